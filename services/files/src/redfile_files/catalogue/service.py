"""What the files service does, without HTTP: files, texts, reading, quotas, ownership.

Callers pass an ``actor`` (anything with ``username`` and ``is_admin``, e.g.
the request's Principal) or ``None`` for a trusted service call.  A user sees
and changes only their own files: another user's file is reported exactly as
a missing one (404), so ids cannot be probed.  Admins act on any file.
Uploads are always the uploader's own, admins included (see ``uploads``).

Metrics and the audit trail come in as objects (``FilesMetrics``, an audit
log); without them the service counts and audits nothing, so it needs no
Flask app.  A user's own deletion of a file is audited here (``file.deleted``);
a trusted service's (an admin's, through the admin service) is audited by the
admin service.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import Protocol

import google_crc32c
import structlog

from redfile_common.audit import NullAuditLog
from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.checksums import part_of, sha256_hex
from redfile_files.crypto import ChunkCorrupt, Encryption
from redfile_files.maintenance.reconcile import Reconciler
from redfile_files.records import ChunkReceipt, FileRecord, UploadStatus, iso, new_file_id
from redfile_files.settings import FilesSettings
from redfile_files.storage.files import ChunkMissing, FileStore, Late
from redfile_files.storage.ledger import Ledger, Stats
from redfile_files.uploads.service import Uploads, _late
from redfile_files.validation import decode_cursor, encode_cursor, is_file_id, validate_mime_type, validate_name

log = structlog.get_logger("redfile.files")

TEXT_MIME_TYPE = "text/plain; charset=utf-8"
# Downloads read the next chunk while the current one is being sent: one fetch ahead per download.
_READ_AHEAD = ThreadPoolExecutor(max_workers=32, thread_name_prefix="redfile-read-ahead")


class FileGone(ChunkMissing):
    """A chunk is missing because its file was deleted (or expired) while it was being read: a race, not damage.

    Not counted as a storage checksum failure; a download that has not sent its
    headers yet answers 404, one that has is cut short as for any missing chunk.
    """


class Actor(Protocol):
    username: str
    is_admin: bool


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


class FilesService:
    def __init__(
        self,
        store: FileStore,
        settings: FilesSettings,
        clock=time.time,
        *,
        ledger: Ledger | None = None,
        encryption: Encryption | None = None,
        metrics: FilesMetrics | None = None,
        audit=None,
    ) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or FilesMetrics.null()
        self.audit = audit or NullAuditLog()
        self.ledger = ledger or Ledger(store.redis, default_quota=settings.default_quota_bytes, default_max_file=settings.max_file_bytes)
        self.encryption = encryption or Encryption([])
        self.reconciler = Reconciler(store, self.ledger, batch=settings.sweep_batch, metrics=self.metrics)
        self.uploads = Uploads(store, self.ledger, self.reconciler, self.encryption, settings, clock, metrics=self.metrics)
        self.on_deleted: list = []  # callables (file_id) run after a file is deleted (sharing forgets its shares)

    # -- the seed's chunked uploads ---------------------------------------------
    def receive_chunk(
        self, owner: str, *, file_id: str | None, chunk_index: int, total_chunks: int, data, sha256: str | None, crc32c: str | None = None
    ) -> ChunkReceipt:
        """Store one chunk; a missing ``file_id`` starts a new upload."""
        part = part_of(data)
        self.uploads.verify(part, chunk_index, sha256=sha256, crc32c=crc32c, computed_sha256=sha256_hex(data) if sha256 else "")
        return self.uploads.receive_seed_chunk(owner, file_id=file_id, index=chunk_index, total_chunks=total_chunks, data=data, part=part)

    def complete_upload(
        self,
        owner: str,
        *,
        file_id: str,
        name: str,
        mime_type: str | None,
        total_size: int,
        kind: str = "file",
        expires_ts: int | None = None,
    ) -> FileRecord:
        name = validate_name(name, self.settings.max_name_bytes)
        mime_type = validate_mime_type(mime_type)
        return self.uploads.complete(
            owner, file_id, name=name, mime_type=mime_type, total_size=total_size, kind=kind, expires_ts=expires_ts
        )

    # -- one-request uploads and texts ---------------------------------------
    def create_file(self, owner: str, data: bytes, *, name: str, mime_type: str | None, kind: str = "file") -> FileRecord:
        """Store a small file in one go, through the same session, chunk and commit path as large ones."""
        name = validate_name(name, self.settings.max_name_bytes)
        mime_type = validate_mime_type(mime_type)
        if len(data) > self.settings.max_single_upload_bytes:
            raise ApiError(
                "payload_too_large",
                "The file is too large for a one-request upload; use /uploads.",
                details={"max_single_upload_bytes": self.settings.max_single_upload_bytes},
            )
        size = self.settings.chunk_bytes
        # a one-request file is small (MAX_SINGLE_UPLOAD_BYTES): it always gets its SHA-256
        status = self.uploads.create(
            owner, total_size=len(data), name=name, mime_type=mime_type, chunk_size=size, one_request=True, compute_sha256=True
        )
        view = memoryview(data)
        try:
            for index in range(status.total_chunks):
                piece = view[index * size : (index + 1) * size]
                self.uploads.put(owner, status.id, index, piece, part_of(piece), one_request=True)
            record = self.uploads.complete(owner, status.id, kind=kind, one_request=True)
        except BaseException:
            try:
                self.uploads.abort(owner, status.id, one_request=True)
            except ApiError:
                pass
            raise
        self.metrics.bytes_uploaded(record.size)
        return record

    def create_text(self, owner: str, content: str, name: str | None = None) -> FileRecord:
        if name is None:
            name = datetime.fromtimestamp(self.clock(), UTC).strftime("snippet-%Y%m%d-%H%M%S.txt")
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError("validation_error", "The content is not valid Unicode.") from None
        return self.create_file(owner, data, name=name, mime_type=TEXT_MIME_TYPE, kind="text")

    def read_text(self, actor: Actor | None, file_id: str) -> tuple[FileRecord, str]:
        record = self.get_file(actor, file_id)
        if record.kind != "text":
            raise ApiError("file_not_found", "No such text.")
        data = self.read_whole(record, gone=ApiError("file_not_found", "No such text."))
        return record, data.decode("utf-8", errors="replace")

    def read_whole(self, record: FileRecord, *, gone: ApiError) -> bytes:
        """A small file's bytes at once (texts): ``gone`` when it was deleted meanwhile, ``stored_data_corrupt`` when damaged."""
        try:
            return b"".join(self.read_chunks(record))
        except FileGone:
            raise gone from None
        except (ChunkMissing, ChunkCorrupt) as exc:  # counted by read_chunks
            log.error("text_chunk_unreadable", file_id=record.id, chunk_index=exc.index, reason=type(exc).__name__)
            raise ApiError("stored_data_corrupt", details={"chunk_index": exc.index}) from None

    # -- files ---------------------------------------------------------------
    def get_file(self, actor: Actor | None, file_id: str, raw_meta: dict | None = None) -> FileRecord:
        """The file, if ``actor`` may see it; else ``file_not_found``.

        ``raw_meta``: the meta hash as already read (``FileStore.queue_meta``), so it is not read again.
        """
        if not is_file_id(file_id):
            meta = None
        else:
            meta = self.store.decode_meta(raw_meta) if raw_meta is not None else self.store.get_meta(file_id)
        if meta is None or (actor is not None and not actor.is_admin and meta["owner"] != actor.username):
            raise ApiError("file_not_found")
        return FileRecord.from_meta(meta)

    def read_chunks(self, record: FileRecord, start: int = 0, end: int | None = None, *, by_chunk: bool = False) -> Iterator[bytes]:
        """The file's bytes ``[start, end)``, chunk by chunk, each verified (GCM tag and CRC32C) before any of it is yielded.

        A chunk's bytes come in the pieces Redis sent them in (``fetch_chunk_pieces``: 1 MiB each), never
        joined, unless it is encrypted (opened whole) or ``by_chunk`` asks for one piece per chunk (the
        consistency check hashes each chunk).  The next chunk is fetched while the current one is being
        sent.  A chunk that vanished ends the stream with ``FileGone`` when its file went with it
        (a concurrent delete or expiry), else with ``ChunkMissing``; one that fails
        its check with ``ChunkCorrupt``: never wrong bytes.  The last two are
        counted as storage checksum failures; the bytes of each chunk are counted
        as downloaded as its first piece is handed out.
        """
        end = record.size if end is None else end
        if start >= end:
            return iter(())
        try:
            sealer = self.encryption.sealer(record.id, record.dek)
        except ChunkCorrupt as exc:
            log.error("file_key_unusable", file_id=record.id, reason=str(exc))
            self.metrics.checksum_failure("storage")
            raise ApiError("stored_data_corrupt", "The file's encryption key cannot be opened.") from None
        if record.chunk_size:
            first, last = start // record.chunk_size, (end - 1) // record.chunk_size
            offset_of = lambda i: i * record.chunk_size  # noqa: E731
        else:
            table = self.store.parts(record.id)
            offsets = [0, *accumulate(table[i].size if i in table else 0 for i in range(record.total_chunks))]
            first = max(i for i in range(record.total_chunks) if offsets[i] <= start)
            last = max(i for i in range(record.total_chunks) if offsets[i] < end)
            offset_of = offsets.__getitem__

        def fetch(index: int) -> list[bytes]:
            stored, part = self.store.fetch_chunk_pieces(record.id, index)
            if stored is None or part is None:
                # the delete script removes meta and chunks at once: no meta now means the file went meanwhile
                raise FileGone(index) if self.store.file_sizes([record.id])[0] is None else ChunkMissing(index)
            if sealer.encrypted or (by_chunk and len(stored) > 1):
                stored = [sealer.open(index, b"".join(stored))]
            crc = google_crc32c.Checksum()
            for piece in stored:
                crc.update(piece)
            if sum(map(len, stored)) != part.size or crc.digest().hex() != part.crc32c:
                raise ChunkCorrupt(index, "checksum mismatch")
            return stored

        metrics = self.metrics

        def pieces() -> Iterator[bytes]:
            pending: Future = _READ_AHEAD.submit(fetch, first)
            try:
                for index in range(first, last + 1):
                    try:
                        plain = pending.result()
                    except FileGone:
                        raise
                    except (ChunkMissing, ChunkCorrupt):
                        metrics.checksum_failure("storage")
                        raise
                    if index < last:
                        pending = _READ_AHEAD.submit(fetch, index + 1)
                    base = offset_of(index)
                    metrics.bytes_downloaded(min(end, base + sum(map(len, plain))) - max(start, base))  # the chunk's, once
                    pos = base
                    for whole in plain:
                        lo, hi = max(0, start - pos), min(len(whole), end - pos)
                        pos += len(whole)
                        if lo < hi:
                            yield whole if (lo, hi) == (0, len(whole)) else whole[lo:hi]
                    plain = whole = None  # nothing of this chunk held while the generator waits
            finally:
                pending.cancel()

        return pieces()

    def list_files(self, owner: str | None, *, limit: int, cursor: str | None) -> tuple[list[FileRecord], str | None]:
        """A page of ``owner``'s files (every file when None), newest first."""
        after = decode_cursor(cursor)
        if owner is not None:
            self.reconciler.sweep_user(owner)
        ids, last = self.ledger.page(owner, limit, after)
        items = [FileRecord.from_meta(m) for m in self.store.get_metas(ids) if m is not None]
        return items, (encode_cursor(*last) if last else None)

    def rename(self, actor: Actor | None, file_id: str, new_name: str) -> FileRecord:
        new_name = validate_name(new_name, self.settings.max_name_bytes)
        self.get_file(actor, file_id)
        if not self.store.rename(file_id, new_name, iso(self.clock())):
            raise ApiError("file_not_found")
        return self.get_file(actor, file_id)

    def delete(self, actor: Actor | None, file_id: str) -> None:
        """Delete a file; audited when a user did it (``actor``), not for a trusted service (which audits its own)."""
        record = self.get_file(actor, file_id)
        if not self._delete(record.owner, file_id):
            raise ApiError("file_not_found")
        log.info("file_deleted", file_id=file_id, owner=record.owner, by=actor.username if actor else "service")
        if actor is not None:
            self.audit.record("file.deleted", actor=actor.username, user=record.owner, target=file_id, size=record.size, kind=record.kind)

    def _delete(self, owner: str, file_id: str) -> bool:
        """Lease, remove the file (fenced), unindex it, release its bytes; see ``uploads``."""
        lease = self.ledger.lease(owner, file_id)
        try:
            gone = self.store.delete_file(file_id, not_after_us=lease.fence, only_owner=owner)
        except Late:
            raise _late() from None
        if gone is None:
            # Another delete (or the expiry) got there first, and its last step may have yielded to our
            # newer lease: settle the id now, as the sweep would when our lease ends (a gone id stays gone).
            self.reconciler.reconcile(owner, file_id, lease.score)
            return False
        self.ledger.unindex_global(file_id)
        self.ledger.apply(owner, file_id, expected=lease.score, held=None, index_ms=None, due_us=None)
        for hook in self.on_deleted:
            hook(file_id)
        return True

    def delete_owner_files(self, owner: str) -> int:
        """Delete every file and upload of ``owner``, and their quota settings; returns how many files."""
        deleted = 0
        while True:
            ids = self.ledger.owner_file_ids(owner, 500)
            if not ids:
                break
            for file_id in ids:
                if self._delete(owner, file_id):
                    deleted += 1
                else:
                    self.reconciler.reconcile(owner, file_id, None)
        for upload_id, holding in self.ledger.holdings(owner).items():
            if holding.kind == "r":
                try:
                    self.uploads.abort(owner, upload_id)  # counted as aborted
                except ApiError:
                    self.reconciler.reconcile(owner, upload_id, None)
        self.ledger.set_quota(owner, None, None)
        return deleted

    # -- quotas ------------------------------------------------------------------
    def quota(self, username: str) -> QuotaView:
        self.reconciler.sweep_user(username)
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

    # -- counts ------------------------------------------------------------------
    def stats(self, owner: str | None = None) -> Stats:
        """Files, bytes stored and uploads in progress: everyone's, or ``owner``'s (zeros for a stranger).

        O(1) reads (see ``ledger``).  An owner's due entries are swept first, as for
        their quota; everyone's count what the background sweep has seen, and
        set the active-uploads gauge.
        """
        if owner is not None:
            self.reconciler.sweep_user(owner)
            return self.ledger.stats(owner)
        stats = self.ledger.stats()
        self.metrics.set_active_uploads(stats.active_uploads)
        return stats

    def upload_status(self, owner: str, upload_id: str) -> UploadStatus:
        return self.uploads.status(owner, upload_id)


__all__ = ["ChunkReceipt", "FileGone", "FileRecord", "FilesService", "QuotaView", "Stats", "iso", "new_file_id"]
