"""The tus operations every other one builds on: read, create, append a body, finish, terminate.

A tus upload is an upload of mode ``tus``: the same keys, quota reservation, leases, completion and
sweep as a session (``storage.lifecycle``).  A known length is reserved at creation; a deferred one
(and a final upload's) as the bytes come.  There is no lock: of two ``PATCH`` requests at one offset
the first append to run wins and the other gets 409 with the offset to resume at.  When the offset
reaches the length the sessions' completion makes it a file, and its tus fields are copied into the
file's meta; a finish that fails (or a crash) leaves a whole upload the next ``HEAD`` or ``PATCH``
finishes.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import structlog

from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.catalogue.reader import Reader
from redfile_files.catalogue.service import Catalogue
from redfile_files.crypto import Encryption
from redfile_files.records import iso, new_file_id
from redfile_files.settings import FilesSettings
from redfile_files.storage.keys import UploadMode
from redfile_files.storage.lifecycle import Lifecycle
from redfile_files.storage.records import NewUpload
from redfile_files.tus.appender import Appender
from redfile_files.tus.model import TusUpload, from_file, from_upload
from redfile_files.tus.protocol import Metadata
from redfile_files.uploads.completion import Completion
from redfile_files.uploads.service import Uploads
from redfile_files.validation import ROOT_FOLDER, is_file_id, lenient_mime_type, validate_folder, validate_name

log = structlog.get_logger("redfile.files.tus")


@dataclass(frozen=True)
class _Owner:
    username: str
    is_admin: bool = False


class TusCore:
    def __init__(
        self,
        lifecycle: Lifecycle,
        uploads: Uploads,
        completion: Completion,
        catalogue: Catalogue,
        reader: Reader,
        encryption: Encryption,
        settings: FilesSettings,
        *,
        clock: Callable[[], float] = time.time,
        metrics: FilesMetrics | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.store = lifecycle.files
        self.uploads = uploads
        self.completion = completion
        self.catalogue = catalogue
        self.reader = reader
        self.encryption = encryption
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or FilesMetrics.null()

    @property
    def max_size(self) -> int:
        return self.settings.max_file_bytes

    def get(self, owner: str, upload_id: str) -> TusUpload:
        """The owner's tus upload, or the file it became; ``upload_not_found`` otherwise (another user's too)."""
        if not is_file_id(upload_id):
            raise ApiError("upload_not_found")
        snap = self.store.snapshot(upload_id)
        if snap.upload is not None and snap.upload.owner == owner and snap.upload.mode is UploadMode.TUS:
            return from_upload(upload_id, snap.upload.fields)
        if snap.meta is not None and snap.meta.get("owner") == owner:
            return from_file(upload_id, snap.meta)
        raise ApiError("upload_not_found")

    def create(self, owner: str, *, length: int | None, metadata: Metadata, concat: str, parts: tuple[str, ...] = ()) -> TusUpload:
        """Open an upload of ``length`` bytes (None: deferred, reserved as its bytes come)."""
        upload_id = new_file_id()
        name = metadata.text("filename", "name")
        name = validate_name(name, self.settings.max_name_bytes) if name is not None else f"upload-{upload_id[:8]}"
        folder = validate_folder(metadata.text("folder"), default=ROOT_FOLDER)
        self.lifecycle.sweep_user(owner)
        chunk_size = self.settings.chunk_bytes
        new = NewUpload(
            owner=owner,
            mode=UploadMode.TUS,
            total_chunks=math.ceil((length or 0) / chunk_size),
            dek=self.encryption.new_wrapped_key(upload_id),
            created_at=iso(self.clock()),
            total_size=length,
            chunk_size=chunk_size,
            name=name,
            mime_type=lenient_mime_type(metadata.text("filetype", "type", "content-type"), name),
            tus_metadata=metadata.raw,
            tus_concat=concat,
            tus_parts=parts,
            folder=folder,
        )
        deadline = self.lifecycle.open(owner, upload_id, new, reserve=length or 0)
        self.metrics.upload_started()
        log.info("tus_upload_created", upload_id=upload_id, owner=owner, length=length, concat=concat.split(";")[0] or None)
        fields = {k: str(v) for k, v in new.fields().items()} | {"received_bytes": "0", "deadline": str(deadline)}
        return from_upload(upload_id, fields)

    def appender(
        self,
        owner: str,
        up: TusUpload,
        *,
        length: int | None,
        staged: bool,
        reserve: bool,
        limit: int,
        allow_final: bool = False,
        body_length: int | None = None,
    ) -> Appender:
        """An ``Appender`` that puts bytes onto ``up`` from its offset."""
        return Appender(
            self.lifecycle,
            owner,
            up.id,
            offset=up.at,
            chunk_size=up.chunk_size,
            sealer=self.encryption.sealer(up.id, up.dek),
            length=length,
            staged=staged,
            reserve=reserve,
            limit=limit,
            offset_now=lambda: self.get(owner, up.id).at,
            clock=self.clock,
            metrics=self.metrics,
            allow_final=allow_final,
            body_length=body_length,
        )

    def finish(self, owner: str, up: TusUpload) -> TusUpload:
        """Turn a whole upload into a file (the sessions' completion); idempotent."""
        try:
            self.completion.complete(owner, up.id)
        except ApiError:
            meta = self.store.get_meta(up.id)  # another request may have finished it meanwhile
            if meta is None or meta["owner"] != owner:
                raise
        annotations = {k: v for k, v in (("tus_metadata", up.metadata), ("tus_concat", up.concat)) if v}
        if annotations:
            self.lifecycle.tus.annotate_file(up.id, annotations)
        return self.get(owner, up.id)

    def terminate(self, owner: str, upload_id: str) -> None:
        """``DELETE``: abort an unfinished upload (its reservation returns), or delete the file it became."""
        for _ in range(3):  # it may become a file between the read and the abort
            up = self.get(owner, upload_id)
            try:
                if up.finished:
                    self.catalogue.delete(_Owner(owner), upload_id)
                else:
                    self.uploads.abort(owner, upload_id)
                return
            except ApiError as exc:
                if exc.code not in ("upload_not_found", "file_not_found"):
                    raise
        raise ApiError("upload_not_found")

    def terminate_quietly(self, owner: str, upload_id: str) -> None:
        """Abort an upload nobody will use (a failed creation, a concatenated partial); gone already is fine."""
        try:
            self.uploads.abort(owner, upload_id)
        except ApiError as exc:
            if exc.code != "upload_not_found":
                log.warning("tus_abort_failed", upload_id=upload_id, code=exc.code)
        except Exception as exc:  # the upload expires with its deadline anyway
            log.warning("tus_abort_failed", upload_id=upload_id, error_type=type(exc).__name__)
