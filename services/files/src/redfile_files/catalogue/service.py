"""The catalogue, without HTTP: files and texts, listing, rename, delete, quotas and counts.

Callers pass an ``actor`` (anything with ``username`` and ``is_admin``, e.g. the request's
Principal) or ``None`` for a trusted service call.  A user sees and changes only their own files:
another user's file is reported exactly as a missing one (404), so ids cannot be probed.  Admins
act on any file.  A user's own deletion of a file is audited here (``file.deleted``); a trusted
service's (an admin's, through the admin service) is audited by that service.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Protocol

import structlog

from redfile_common.audit import NullAuditLog
from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.catalogue.reader import Reader
from redfile_files.catalogue.search import FileQuery, Search
from redfile_files.checksums import part_of
from redfile_files.records import FileRecord, iso
from redfile_files.settings import FilesSettings
from redfile_files.storage.files import prefetch_meta as _prefetch_meta
from redfile_files.storage.files import read_meta
from redfile_files.storage.ledger import Ledger
from redfile_files.storage.lifecycle import Lifecycle
from redfile_files.storage.listing import Listings
from redfile_files.storage.records import Reserved, Stats
from redfile_files.uploads.completion import Completion
from redfile_files.uploads.service import LARGE_FILES_HINT, Uploads
from redfile_files.validation import decode_cursor, encode_cursor, is_file_id, mime_type_for, validate_folder, validate_name

log = structlog.get_logger("redfile.files")

TEXT_MIME_TYPE = "text/plain; charset=utf-8"


class Actor(Protocol):
    @property
    def username(self) -> str: ...

    @property
    def is_admin(self) -> bool: ...


@dataclass(frozen=True)
class QuotaView:
    username: str
    quota_bytes: int
    max_file_bytes: int
    used_bytes: int
    reserved_bytes: int
    quota_is_default: bool
    max_file_is_default: bool

    @property
    def available_bytes(self) -> int:
        return max(0, self.quota_bytes - self.used_bytes - self.reserved_bytes)


def prefetch_meta(pipe, file_id: str) -> None:
    """``login_required(reads=...)`` of a file's metadata route: the meta read in the token check's round trip."""
    if is_file_id(file_id):
        _prefetch_meta(pipe, file_id)


class Catalogue:
    def __init__(
        self,
        uploads: Uploads,
        completion: Completion,
        reader: Reader,
        ledger: Ledger,
        settings: FilesSettings,
        *,
        clock: Callable[[], float] = time.time,
        metrics: FilesMetrics | None = None,
        audit=None,
        listings: Listings | None = None,
    ) -> None:
        self.uploads = uploads
        self.completion = completion
        self.reader = reader
        self.lifecycle: Lifecycle = uploads.lifecycle
        self.store = self.lifecycle.files
        self.ledger = ledger
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or FilesMetrics.null()
        self.audit = audit or NullAuditLog()
        self.search = Search(listings or Listings(self.store.redis), self.store)
        self.on_deleted: list[Callable[[str], object]] = []  # run after a file is deleted (sharing forgets its shares)

    # -- one-request files and texts ---------------------------------------------
    def create_file(
        self, owner: str, data: bytes, *, name: str, mime_type: str | None, kind: str = "file", folder: str | None = None
    ) -> FileRecord:
        """Store a small file in one go, through the same session, chunk and commit path as large ones."""
        name = validate_name(name, self.settings.max_name_bytes)
        mime_type = mime_type_for(name, mime_type)
        if len(data) > self.settings.max_single_upload_bytes:
            raise ApiError(
                "payload_too_large",
                f"The file is over the {self.settings.max_single_upload_bytes:,} bytes of a one-request upload. {LARGE_FILES_HINT}",
                details={"max_single_upload_bytes": self.settings.max_single_upload_bytes},
            )
        size = self.settings.chunk_bytes
        # a one-request file is small (MAX_SINGLE_UPLOAD_BYTES): it always gets its SHA-256
        status = self.uploads.create(
            owner,
            total_size=len(data),
            name=name,
            mime_type=mime_type,
            chunk_size=size,
            one_request=True,
            compute_sha256=True,
            folder=folder,
        )
        view = memoryview(data)
        try:
            for index in range(status.total_chunks):
                piece = view[index * size : (index + 1) * size]
                self.uploads.put(owner, status.id, index, piece, part_of(piece), one_request=True)
            record = self.completion.complete(owner, status.id, kind=kind, one_request=True)
        except BaseException:
            with contextlib.suppress(ApiError):
                self.uploads.abort(owner, status.id, one_request=True)
            raise
        self.metrics.bytes_uploaded(record.size)
        return record

    def create_text(self, owner: str, content: str, name: str | None = None, folder: str | None = None) -> FileRecord:
        if name is None:
            name = datetime.fromtimestamp(self.clock(), UTC).strftime("snippet-%Y%m%d-%H%M%S.txt")
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError("validation_error", "The content is not valid Unicode.") from None
        return self.create_file(owner, data, name=name, mime_type=TEXT_MIME_TYPE, kind="text", folder=folder)

    def read_text(self, actor: Actor | None, file_id: str) -> tuple[FileRecord, str]:
        record = self.get_file(actor, file_id)
        if record.kind != "text":
            raise ApiError("file_not_found", "No such text.")
        data = self.reader.read_whole(record, gone=ApiError("file_not_found", "No such text."))
        return record, data.decode("utf-8", errors="replace")

    # -- files ---------------------------------------------------------------
    def get_file(self, actor: Actor | None, file_id: str, read: list | None = None) -> FileRecord:
        """The file, if ``actor`` may see it; else ``file_not_found``.  ``read``: what ``prefetch_meta`` read."""
        meta = None if not is_file_id(file_id) else read_meta(read) if read else self.store.get_meta(file_id)
        if meta is None or (actor is not None and not actor.is_admin and meta["owner"] != actor.username):
            raise ApiError("file_not_found")
        return FileRecord.from_meta(meta)

    def list_files(
        self, owner: str | None, *, limit: int, cursor: str | None, query: FileQuery | None = None
    ) -> tuple[list[FileRecord], str | None]:
        """A page of ``owner``'s files (every file when None), newest first; filtered and sorted by ``query``."""
        if owner is not None:
            self.lifecycle.sweep_user(owner)
            if query is not None and query != FileQuery():
                return self.search.page(owner, query, limit=limit, cursor=cursor)
        after = decode_cursor(cursor)
        ids, last = self.ledger.page(owner, limit, after)
        items = [FileRecord.from_meta(m) for m in self.store.get_metas(ids) if m is not None]
        return items, (encode_cursor(*last) if last else None)

    def rename(self, actor: Actor | None, file_id: str, new_name: str) -> FileRecord:
        return self.update(actor, file_id, name=new_name)

    def update(self, actor: Actor | None, file_id: str, *, name: str | None = None, folder: str | None = None) -> FileRecord:
        """Rename and/or move a file (``Lifecycle.move``): its owner's or, for an admin, anyone's."""
        if name is not None:
            name = validate_name(name, self.settings.max_name_bytes)
        if folder is not None:
            folder = validate_folder(folder)
        record = self.get_file(actor, file_id)
        if not self.lifecycle.move(record.owner, file_id, name=name, folder=folder, now_iso=iso(self.clock())):
            raise ApiError("file_not_found")
        return self.get_file(actor, file_id)

    def delete(self, actor: Actor | None, file_id: str) -> None:
        """Delete a file; audited when a user did it (``actor``), not for a trusted service (which audits its own)."""
        record = self.get_file(actor, file_id)
        if not self.remove(record.owner, file_id):
            raise ApiError("file_not_found")
        log.info("file_deleted", file_id=file_id, owner=record.owner, by=actor.username if actor else "service")
        if actor is not None:
            self.audit.record("file.deleted", actor=actor.username, user=record.owner, target=file_id, size=record.size, kind=record.kind)

    def remove(self, owner: str, file_id: str) -> bool:
        """Delete ``owner``'s file (the lifecycle's ``delete``), then run the ``on_deleted`` hooks; False when it was gone."""
        if not self.lifecycle.delete(owner, file_id):
            return False
        for hook in self.on_deleted:
            hook(file_id)
        return True

    def delete_owner_files(self, owner: str) -> int:
        """Delete every file and upload of ``owner``, and their quota settings; how many files."""
        deleted = 0
        while True:
            ids = self.ledger.owner_file_ids(owner, 500)
            if not ids:
                break
            for file_id in ids:
                if self.remove(owner, file_id):
                    deleted += 1
                else:
                    self.lifecycle.reconcile(owner, file_id, None)
        for upload_id, holding in self.ledger.holdings(owner).items():
            if isinstance(holding, Reserved):
                try:
                    self.uploads.abort(owner, upload_id)  # counted as aborted
                except ApiError:
                    self.lifecycle.reconcile(owner, upload_id, None)
        self.ledger.set_quota(owner, None, None)
        return deleted

    # -- quotas and counts --------------------------------------------------------
    def quota(self, username: str) -> QuotaView:
        self.lifecycle.sweep_user(username)
        q = self.ledger.quota(username)
        return QuotaView(
            username=username,
            quota_bytes=q.limit if q.limit is not None else self.settings.default_quota_bytes,
            max_file_bytes=q.max_file if q.max_file is not None else self.settings.max_file_bytes,
            used_bytes=q.used,
            reserved_bytes=q.reserved,
            quota_is_default=q.limit is None,
            max_file_is_default=q.max_file is None,
        )

    def set_quota(self, username: str, quota_bytes: int | None, max_file_bytes: int | None) -> QuotaView:
        self.ledger.set_quota(username, quota_bytes, max_file_bytes)
        log.info("quota_set", target=username, quota_bytes=quota_bytes, max_file_bytes=max_file_bytes)
        return self.quota(username)

    def stats(self, owner: str | None = None) -> Stats:
        """Files, bytes stored and uploads in progress: everyone's, or ``owner``'s (zeros for a stranger).

        O(1) reads.  An owner's due entries are swept first, as for their quota; everyone's count what
        the background sweep has seen, and set the active-uploads gauge.
        """
        if owner is not None:
            self.lifecycle.sweep_user(owner)
            return self.ledger.stats(owner)
        stats = self.ledger.stats()
        self.metrics.set_active_uploads(stats.active_uploads)
        return stats
