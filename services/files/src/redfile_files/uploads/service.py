"""Upload sessions and the seed's chunks: open, receive chunks, abort (completion: ``completion.py``).

No Flask here.  Two kinds of upload share one engine (the same keys, scripts and completion):

* a **session** declares its total size (and name, type, optional SHA-256 and file expiry) up
  front: the whole size is reserved before any chunk is accepted, and each chunk must have the
  session's chunk size (the last one the rest);
* a **seed upload** (``POST /upload_chunk``) declares only ``total_chunks``: each new chunk
  reserves its own bytes first, and gives them back when it is not stored after all.

The quota protocol (reserve, lease, fence, settle) is ``storage.lifecycle``'s.  Metrics are
counted here, where things happen; a one-request file (``one_request=True``) counts only its
refusals and failures (its bytes are counted once by the caller).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import structlog

from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.checksums import ChunkDigest, Part, RunningDigests, part_of, sha256_hex, verify
from redfile_files.crypto import ChunkCorrupt, Encryption
from redfile_files.records import ChunkReceipt, UploadStatus, iso, new_file_id
from redfile_files.settings import FilesSettings
from redfile_files.storage.files import FileStore, read_upload
from redfile_files.storage.files import prefetch_upload as _prefetch_upload
from redfile_files.storage.keys import UploadMode
from redfile_files.storage.lifecycle import Lifecycle
from redfile_files.storage.records import NewUpload, UploadState, decode_upload
from redfile_files.uploads import intake
from redfile_files.validation import ROOT_FOLDER, is_file_id, mime_type_for, validate_folder, validate_name

# What a client told "too large" can do: the two ways of sending a file in pieces.
LARGE_FILES_HINT = (
    "Send a large file in pieces: tus (POST /tus/, then PATCH; or the whole file in that POST where no front door "
    "limits bodies) or an upload session (POST /uploads, then PUT /uploads/<id>/chunks/<n>); the README shows both with curl."
)

log = structlog.get_logger("redfile.files")


def prefetch_upload(pipe, upload_id: str, *, parts: bool = False, **_) -> None:
    """``login_required(reads=...)`` of an upload's routes: the upload (with ``parts``, its part table) read in the
    token check's round trip; an id that is not one reads nothing."""
    if is_file_id(upload_id):
        _prefetch_upload(pipe, upload_id, parts=parts)


class Uploads:
    def __init__(
        self,
        lifecycle: Lifecycle,
        encryption: Encryption,
        settings: FilesSettings,
        clock: Callable[[], float] = time.time,
        metrics: FilesMetrics | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.store: FileStore = lifecycle.files
        self.encryption = encryption
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or FilesMetrics.null()
        self.running = RunningDigests()

    # -- helpers ---------------------------------------------------------------
    def upload(self, owner: str, upload_id: str, read: list | None = None) -> UploadState:
        """The owner's upload (else ``upload_not_found``); ``read``: what ``prefetch`` read with the token check."""
        state = None if not is_file_id(upload_id) else read_upload(upload_id, read) if read else self.store.get_upload(upload_id)
        if state is None or state.owner != owner:
            raise ApiError("upload_not_found")
        return state

    def verify(self, part: Part, index: int, *, sha256: str | None, crc32c: str | None, computed_sha256: str = "") -> None:
        """400 ``checksum_mismatch`` (counted) when a checksum the client sent does not match the chunk."""
        try:
            verify(part, index, sha256=sha256, crc32c=crc32c, computed_sha256=computed_sha256)
        except ApiError:
            self.metrics.checksum_failure("client")
            raise

    def corrupt(self, message: str | None = None, **details) -> ApiError:
        """``stored_data_corrupt``, counted as a storage checksum failure."""
        self.metrics.checksum_failure("storage")
        return ApiError("stored_data_corrupt", message, details=details or None)

    def check_expiry(self, expires_ts: int | None) -> int | None:
        if expires_ts is None:
            return None
        if expires_ts <= self.clock():
            raise ApiError(
                "validation_error",
                "The file's expiry time must be in the future.",
                details={"json": {"expires_at": ["Must be in the future."]}},
            )
        return int(expires_ts)

    def _too_large(self) -> ApiError:
        return ApiError("payload_too_large", "The chunk is too large.", details={"max_chunk_bytes": self.settings.max_chunk_bytes})

    # -- sessions --------------------------------------------------------------
    def create(
        self,
        owner: str,
        *,
        total_size: int,
        name: str,
        mime_type: str | None,
        chunk_size: int | None = None,
        sha256: str | None = None,
        expires_ts: int | None = None,
        one_request: bool = False,
        compute_sha256: bool = False,
        folder: str | None = None,
    ) -> UploadStatus:
        """Reserve ``total_size`` against the owner's quota, then open an upload session.

        The file's SHA-256 is computed when it is declared (``sha256``, then verified) or asked for
        (``compute_sha256``); otherwise the file gets its CRC32C and BLAKE3 composite only.
        """
        name = validate_name(name, self.settings.max_name_bytes)
        folder = validate_folder(folder, default=ROOT_FOLDER)
        mime_type = mime_type_for(name, mime_type)
        expires_ts = self.check_expiry(expires_ts)
        chunk_size = chunk_size or self.settings.chunk_bytes
        if not 1 <= chunk_size <= self.settings.max_chunk_bytes:
            raise ApiError(
                "validation_error", details={"json": {"chunk_size": [f"Must be between 1 and {self.settings.max_chunk_bytes}."]}}
            )
        total_chunks = math.ceil(total_size / chunk_size)
        if total_chunks > self.settings.max_chunks:
            raise ApiError(
                "validation_error",
                "The upload would need too many chunks; use a larger chunk_size.",
                details={"json": {"chunk_size": [f"total_size / chunk_size must be at most {self.settings.max_chunks}."]}},
            )
        self.lifecycle.sweep_user(owner)
        upload_id = new_file_id()
        new = NewUpload(
            owner=owner,
            mode=UploadMode.SESSION,
            total_chunks=total_chunks,
            dek=self.encryption.new_wrapped_key(upload_id),
            created_at=iso(self.clock()),
            total_size=total_size,
            chunk_size=chunk_size,
            name=name,
            mime_type=mime_type,
            sha256=sha256 or "",
            want_sha256=bool(sha256 or compute_sha256),
            file_expires=expires_ts,
            folder=folder,
        )
        deadline = self.lifecycle.open(owner, upload_id, new, reserve=total_size)
        if not one_request:
            self.metrics.upload_started()
        log.info("upload_created", upload_id=upload_id, owner=owner, total_size=total_size, chunks=total_chunks)
        # what status() would read back, known already: the record as Redis holds it, nothing stored
        state = decode_upload(upload_id, {k: str(v) for k, v in (new.fields() | {"deadline": deadline, "received_bytes": 0}).items()}, 0)
        assert state is not None
        return self.status_of(state, range(total_chunks))

    def status(self, owner: str, upload_id: str) -> UploadStatus:
        state = self.upload(owner, upload_id)
        missing = self.store.missing_chunks(upload_id, state.total_chunks) if state.received_chunks < state.total_chunks else []
        return self.status_of(state, missing)

    @staticmethod
    def status_of(state: UploadState, missing) -> UploadStatus:
        return UploadStatus(
            id=state.id,
            name=state.name,
            mime_type=state.mime_type,
            total_size=state.total_size,
            chunk_size=state.chunk_size,
            total_chunks=state.total_chunks,
            received_chunks=state.received_chunks,
            received_bytes=state.received_bytes,
            missing=list(missing[:100]),
            missing_count=len(missing),
            expires_at=iso(state.deadline),
            created_at=state.created_at,
            updated_at=state.updated_at,
            sha256=state.sha256 or None,
            file_expires_at=iso(state.file_expires) if state.file_expires else None,
            encrypted=bool(state.dek),
            checksum_algorithm="sha256" if state.want_sha256 else None,
            folder=state.folder,
        )

    # -- chunks ----------------------------------------------------------------
    def receive(
        self,
        owner: str,
        upload_id: str,
        index: int,
        body,
        length: int | None,
        *,
        sha256: str | None = None,
        crc32c: str | None = None,
        read: list | None = None,
    ) -> ChunkReceipt:
        """``PUT /uploads/<id>/chunks/<index>``: the raw ``body`` of ``length`` bytes (None: chunked encoding).

        A session chunk in the clear with a known length is checked before its body is read (upload,
        owner, index, the exact size this index must have), then streamed into Redis while it is
        hashed (``intake``); the rest (seed uploads, encrypted uploads, no length) is read whole and
        stored by ``put``.  ``read``: the upload as ``prefetch`` read it.
        """
        limit = self.settings.max_chunk_bytes
        if length is not None and length > limit:
            raise self._too_large()
        state = self.upload(owner, upload_id, read)
        if length is None or state.mode is not UploadMode.SESSION or state.dek:
            data = intake.read_whole(body, length, limit)
            return self.put(owner, upload_id, index, data, part_of(data), sha256=sha256, crc32c=crc32c, state=state)
        total, chunk_size = state.total_chunks, state.chunk_size or 0
        if not 0 <= index < total:
            raise ApiError("invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": total})
        expected = chunk_size if index < total - 1 else (state.total_size or 0) - chunk_size * (total - 1)
        if length != expected:
            raise ApiError(
                "invalid_chunk",
                "The chunk's size is not the one this index must have.",
                details={"chunk_index": index, "expected_size": expected, "size": length},
            )
        chunk = ChunkDigest(sha256=sha256 is not None)
        running = self.running.fork(upload_id, index) if state.want_sha256 else None
        with self.store.stage(upload_id, index, length) as staged:
            # threads pay off only when a SHA-256 is computed (intake's docstring)
            digests: list[intake.Digest] = [chunk] if running is None else [chunk, running]
            intake.stream_into(body, length, staged, digests, threaded=sha256 is not None or running is not None)
            part = chunk.part()
            # a mismatch leaves the staged SET unfinished: Redis drops it with the connection, nothing is stored
            self.verify(part, index, sha256=sha256, crc32c=crc32c, computed_sha256=chunk.sha256)
            now = iso(self.clock())
            write = self.lifecycle.put(owner, upload_id, index=index, data=None, part=part, now_iso=now, staged=staged)
        if running is not None:
            self.running.advance(upload_id, index, running)
        if write.stored:
            self._count_chunk(part)
        return ChunkReceipt(
            upload_id,
            index,
            total,
            write.received_chunks,
            write.received_bytes,
            False,
            write.stored,
            part.size,
            chunk.sha256,
            part.crc32c,
            part.blake3,
        )

    def put(
        self,
        owner: str,
        upload_id: str,
        index: int,
        data,
        part: Part,
        total_chunks: int | None = None,
        *,
        sha256: str | None = None,
        crc32c: str | None = None,
        one_request: bool = False,
        state: UploadState | None = None,
    ) -> ChunkReceipt:
        """Store one chunk of an existing upload (either kind); ``part`` describes its plaintext ``data``.

        ``sha256`` / ``crc32c``: the checksums the client sent, checked first.  ``state``: the upload as
        the caller just read it, so it is not read twice.
        """
        chunk_sha256 = sha256_hex(data) if sha256 else ""
        self.verify(part, index, sha256=sha256, crc32c=crc32c, computed_sha256=chunk_sha256)
        state = state or self.upload(owner, upload_id)
        if not 0 <= index < state.total_chunks:
            raise ApiError(
                "invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": state.total_chunks}
            )
        if len(data) > self.settings.max_chunk_bytes:
            raise self._too_large()
        seed = state.mode is UploadMode.SEED
        if seed and total_chunks is not None and total_chunks != state.total_chunks:
            raise ApiError(
                "invalid_chunk", "total_chunks differs from the upload's declared total.", details={"total_chunks": state.total_chunks}
            )
        # a seed upload's new chunk (or a conflict, which the script refuses) reserves its bytes first
        grow = seed and self.store.get_part(upload_id, index) != part
        write = self.lifecycle.put(
            owner,
            upload_id,
            index=index,
            data=self._seal(upload_id, state.dek, index, data),
            part=part,
            now_iso=iso(self.clock()),
            grow=grow,
            total_chunks=state.total_chunks if seed else None,
        )
        if state.want_sha256:
            self._advance(upload_id, index, data)
        if write.stored and not one_request:
            self._count_chunk(part)
        return ChunkReceipt(
            upload_id,
            index,
            state.total_chunks,
            write.received_chunks,
            write.received_bytes,
            False,
            write.stored,
            part.size,
            chunk_sha256,
            part.crc32c,
            part.blake3,
        )

    def _advance(self, upload_id: str, index: int, plain) -> None:
        """Chunk ``index`` (plaintext ``plain``) of an upload that wants its SHA-256 is stored: extend the upload's
        running digest when it is next in order."""
        running = self.running.fork(upload_id, index)
        if running is not None:
            running.update(plain)
            self.running.advance(upload_id, index, running)

    def _count_chunk(self, part: Part) -> None:
        self.metrics.chunk_stored()
        self.metrics.bytes_uploaded(part.size)

    def _seal(self, upload_id: str, dek: str, index: int, data):
        try:
            return self.encryption.sealer(upload_id, dek).seal(index, data)
        except ChunkCorrupt:
            log.error("upload_key_unusable", upload_id=upload_id)
            raise self.corrupt("The upload's encryption key cannot be opened.") from None

    def receive_seed_chunk(
        self, owner: str, *, file_id: str | None, index: int, total_chunks: int, data, sha256: str | None = None, crc32c: str | None = None
    ) -> ChunkReceipt:
        """The seed's ``/upload_chunk``: checked against the checksums the client sent; a missing ``file_id`` starts a
        new upload with this chunk."""
        part = part_of(data)
        self.verify(part, index, sha256=sha256, crc32c=crc32c, computed_sha256=sha256_hex(data) if sha256 else "")
        if not (1 <= total_chunks <= self.settings.max_chunks and 0 <= index < total_chunks):
            raise ApiError("invalid_chunk", "chunk_index or total_chunks is out of range.")
        if len(data) > self.settings.max_chunk_bytes:
            raise self._too_large()
        if file_id is not None:
            if not is_file_id(file_id):
                raise ApiError("upload_not_found")
            return self.put(owner, file_id, index, data, part, total_chunks=total_chunks)
        self.lifecycle.sweep_user(owner)
        upload_id = new_file_id()
        now = iso(self.clock())
        dek = self.encryption.new_wrapped_key(upload_id)
        new = NewUpload(owner=owner, mode=UploadMode.SEED, total_chunks=total_chunks, dek=dek, created_at=now)
        sealed = self._seal(upload_id, dek, index, data)
        write = self.lifecycle.open_with_chunk(owner, upload_id, new, index=index, data=sealed, part=part, now_iso=now)
        self.metrics.upload_started()
        self._count_chunk(part)
        return ChunkReceipt(
            upload_id, index, total_chunks, write.received_chunks, write.received_bytes, True, True, part.size, "", part.crc32c, part.blake3
        )

    # -- abort ------------------------------------------------------------------
    def abort(self, owner: str, upload_id: str, *, one_request: bool = False) -> None:
        """Remove the upload and every chunk of it; its reserved bytes return to the owner's quota."""
        self.upload(owner, upload_id)
        self.running.forget(upload_id)
        self.lifecycle.discard(owner, upload_id)
        if not one_request:
            self.metrics.upload_aborted()
        log.info("upload_aborted", upload_id=upload_id, owner=owner)
