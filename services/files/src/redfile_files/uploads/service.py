"""The upload engine: sessions and the seed's chunks, quota reservations, completion, abort.

No Flask here.  Two kinds of upload share one engine (the same keys, scripts
and completion):

* a **session** declares its total size (and name, type, optional SHA-256 and
  file expiry) up front: the whole size is reserved against the owner's quota
  before any chunk is accepted, and each chunk must have the session's chunk
  size (the last one the rest);
* a **seed upload** (``POST /upload_chunk``) declares only ``total_chunks``:
  each new chunk reserves its own bytes first, and gives them back when it
  turns out not to be stored (a repeat, a conflict, an error).

Every operation that spans the user's slot and the file's follows the order
and leases described in ``storage`` and ``reconcile``:

============  ==============================================  ==========================
operation     steps (slot)                                    a crash after step k leaves
============  ==============================================  ==========================
create        1 reserve + lease (user)  1b count the upload    1-1b: a reservation (and a
              in progress (all)  2 create upload, fenced       count), released at the
              (file)  3 due := deadline (user)                 lease's end; 2: an upload,
                                                               re-dued at the lease's end
complete      0 checks and checksums (read only)               1: a charge and index entry
              1 charge + index + lease (user)  2 global index  for an upload; 2: the same
              3 commit, fenced (file)  3b no longer in         plus a global entry -- both
              progress (all)  4 due := expiry (user)           reverted at the lease's end;
                                                               3: the file, finished then
abort/delete  1 lease (user)  2 remove, fenced (file)          1: nothing; 2-3: a holding
              3 global unindex, no longer in progress (all)    and index entries of a gone
              4 release (user)                                 id, released at the lease's end
============  ==============================================  ==========================

A failed step leaves its lease in place: the reconciler sets things right
when it ends (after 120 s); the client may retry at once.

Metrics (``FilesMetrics``; the null one by default) are counted here, where
things happen: uploads started, completed and aborted, chunks newly stored and
their bytes, quota refusals, checksums that do not match (``client``) and
stored data that fails its check (``storage``).  A one-request file or text
(``one_request=True``) goes through the same steps but counts only its
refusals and failures: its bytes are counted once by the caller.
"""

from __future__ import annotations

import math
import time
from concurrent.futures import ThreadPoolExecutor

import structlog

from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.checksums import (
    ChunkDigest,
    FileDigest,
    Part,
    RunningDigests,
    composite,
    composite_sha256,
    file_crc32c,
    part_of,
    sha256_hex,
    verify,
)
from redfile_files.crypto import SEAL_OVERHEAD, ChunkCorrupt, Encryption
from redfile_files.maintenance.reconcile import US, Reconciler
from redfile_files.records import ChunkReceipt, FileRecord, UploadStatus, iso, missing_details, new_file_id
from redfile_files.settings import FilesSettings
from redfile_files.storage.files import ChunkMissing, FileStore, Late, UploadState
from redfile_files.storage.ledger import Lease, Ledger
from redfile_files.uploads import intake
from redfile_files.validation import is_file_id, validate_mime_type, validate_name

log = structlog.get_logger("redfile.files")


def _late() -> ApiError:
    return ApiError("service_unavailable", "The operation took too long and was not applied; retry it.", headers={"Retry-After": "1"})


class Uploads:
    def __init__(
        self,
        store: FileStore,
        ledger: Ledger,
        reconciler: Reconciler,
        encryption: Encryption,
        settings: FilesSettings,
        clock=time.time,
        metrics: FilesMetrics | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.reconciler = reconciler
        self.encryption = encryption
        self.settings = settings
        self.clock = clock
        self.metrics = metrics or FilesMetrics.null()
        self.running = RunningDigests()

    # -- helpers ---------------------------------------------------------------
    def _upload(self, owner: str, upload_id: str, read: list | None = None) -> UploadState:
        """The owner's upload; ``read``: the replies of ``FileStore.queue_upload``, already read."""
        if not is_file_id(upload_id):
            state = None
        else:
            state = self.store.decode_upload(upload_id, read) if read else self.store.get_upload(upload_id)
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

    def _corrupt(self, message: str | None = None, **details) -> ApiError:
        """``stored_data_corrupt``, counted as a storage checksum failure."""
        self.metrics.checksum_failure("storage")
        return ApiError("stored_data_corrupt", message, details=details or None)

    def _reserve(self, owner: str, upload_id: str, size: int, **kwargs) -> Lease | None:
        try:
            return self.ledger.reserve(owner, upload_id, size, **kwargs)
        except ApiError as exc:
            self._count_refusal(exc)
            raise

    def _charge(self, owner: str, upload_id: str, size: int, created_ms: int) -> Lease:
        try:
            return self.ledger.charge(owner, upload_id, size, created_ms)
        except ApiError as exc:
            self._count_refusal(exc)
            raise

    def _count_refusal(self, exc: ApiError) -> None:
        if exc.code == "quota_exceeded":
            self.metrics.quota_rejection()

    def _finish(self, user: str, file_id: str, lease: Lease, **target) -> None:
        """The last step of an operation: set the final state, unless a newer lease took over."""
        self.ledger.apply(user, file_id, expected=lease.score, **target)

    def _check_expiry(self, expires_ts: int | None) -> int | None:
        if expires_ts is None:
            return None
        if expires_ts <= self.clock():
            raise ApiError(
                "validation_error",
                "The file's expiry time must be in the future.",
                details={"json": {"expires_at": ["Must be in the future."]}},
            )
        return int(expires_ts)

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
    ) -> UploadStatus:
        """Reserve ``total_size`` against the owner's quota, then open an upload session.

        The file's SHA-256 is computed when it is declared (``sha256``, then verified) or asked for
        (``compute_sha256``); otherwise the file gets its CRC32C and BLAKE3 composite only.
        """
        name = validate_name(name, self.settings.max_name_bytes)
        mime_type = validate_mime_type(mime_type)
        expires_ts = self._check_expiry(expires_ts)
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
        self.reconciler.sweep_user(owner)
        upload_id = new_file_id()
        now = iso(self.clock())
        lease = self._reserve(owner, upload_id, total_size, new=True, lease=True)
        self.ledger.upload_started(upload_id, int(self.clock() * 1000))
        fields = {
            "owner": owner,
            "mode": "session",
            "total_chunks": total_chunks,
            "total_size": total_size,
            "chunk_size": chunk_size,
            "name": name,
            "mime_type": mime_type,
            "sha256": sha256 or "",
            "want_sha256": "1" if sha256 or compute_sha256 else "",
            "file_expires": expires_ts or "",
            "dek": self.encryption.new_wrapped_key(upload_id),
            "created_at": now,
            "updated_at": now,
        }
        try:
            deadline = self.store.create_upload(upload_id, fields, not_after_us=lease.fence)
        except Late:
            raise _late() from None
        self._finish(owner, upload_id, lease, held=f"r>={total_size}", index_ms=None, due_us=deadline * US)
        if not one_request:
            self.metrics.upload_started()
        log.info("upload_created", upload_id=upload_id, owner=owner, total_size=total_size, chunks=total_chunks)
        # what status() would read back, known already: the record just written, nothing stored, every chunk missing
        written = {**fields, "deadline": deadline, "received_bytes": 0}
        state = self.store.decode_upload(upload_id, [{k: "" if v is None else str(v) for k, v in written.items()}, 0])  # as Redis holds it
        return self._status(state, range(total_chunks))

    def status(self, owner: str, upload_id: str) -> UploadStatus:
        state = self._upload(owner, upload_id)
        missing = self.store.missing_chunks(upload_id, state.total_chunks) if state.received_chunks < state.total_chunks else []
        return self._status(state, missing)

    @staticmethod
    def _status(state: UploadState, missing) -> UploadStatus:
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

        A session chunk in the clear with a known length is checked before its
        body is read (upload, owner, index, the exact size this index must
        have), then streamed into Redis while it is hashed (``intake``); the
        rest (seed uploads, encrypted uploads, no length) is read whole and
        stored by ``put``.  ``read``: the upload as already read (``FileStore.queue_upload``).
        """
        limit = self.settings.max_chunk_bytes
        if length is not None and length > limit:
            raise ApiError("payload_too_large", "The chunk is too large.", details={"max_chunk_bytes": limit})
        state = self._upload(owner, upload_id, read)
        if length is None or state.mode != "session" or state.dek:
            data = intake.read_whole(body, length, limit)
            return self.put(owner, upload_id, index, data, part_of(data), sha256=sha256, crc32c=crc32c, state=state)
        if not 0 <= index < state.total_chunks:
            raise ApiError(
                "invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": state.total_chunks}
            )
        expected = state.chunk_size if index < state.total_chunks - 1 else state.total_size - state.chunk_size * (state.total_chunks - 1)
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
            intake.stream_into(
                body, length, staged, [chunk] if running is None else [chunk, running], threaded=sha256 is not None or running is not None
            )
            part = chunk.part()
            # a mismatch leaves the staged SET unfinished: Redis drops it with the connection, nothing is stored
            self.verify(part, index, sha256=sha256, crc32c=crc32c, computed_sha256=chunk.sha256)
            write = self.store.put_chunk(
                upload_id, owner=owner, index=index, data=None, part=part, now_iso=iso(self.clock()), staged=staged
            )
        if running is not None:
            self.running.advance(upload_id, index, running)
        if write.stored:
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

        ``sha256`` / ``crc32c``: the checksums the client sent, checked first.  ``state``: the
        upload as the caller just read it (``receive``), so it is not read twice.
        """
        chunk_sha256 = sha256_hex(data) if sha256 else ""
        self.verify(part, index, sha256=sha256, crc32c=crc32c, computed_sha256=chunk_sha256)
        state = state or self._upload(owner, upload_id)
        if not 0 <= index < state.total_chunks:
            raise ApiError(
                "invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": state.total_chunks}
            )
        if len(data) > self.settings.max_chunk_bytes:
            raise ApiError("payload_too_large", "The chunk is too large.", details={"max_chunk_bytes": self.settings.max_chunk_bytes})
        if state.mode == "seed" and total_chunks is not None and total_chunks != state.total_chunks:
            raise ApiError(
                "invalid_chunk", "total_chunks differs from the upload's declared total.", details={"total_chunks": state.total_chunks}
            )
        seed = state.mode == "seed"
        reserved = False
        if seed:
            known = self.store.get_part(upload_id, index)
            if known is None or not known.same_bytes(part):
                # a new chunk (or a conflict, which the script refuses): its bytes count first
                self._reserve(owner, upload_id, part.size, new=False)
                reserved = True
        stored = self._seal(upload_id, state.dek, index, data)
        try:
            write = self.store.put_chunk(
                upload_id,
                owner=owner,
                index=index,
                data=stored,
                part=part,
                now_iso=iso(self.clock()),
                total_chunks=state.total_chunks if seed else None,
            )
        except BaseException:
            if reserved:
                self.ledger.shrink(owner, upload_id, part.size)
            raise
        if reserved and not write.stored:
            self.ledger.shrink(owner, upload_id, part.size)
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
            raise self._corrupt("The upload's encryption key cannot be opened.") from None

    def receive_seed_chunk(self, owner: str, *, file_id: str | None, index: int, total_chunks: int, data, part: Part) -> ChunkReceipt:
        """The seed's ``/upload_chunk``: a missing ``file_id`` starts a new upload with this chunk."""
        if not (1 <= total_chunks <= self.settings.max_chunks and 0 <= index < total_chunks):
            raise ApiError("invalid_chunk", "chunk_index or total_chunks is out of range.")
        if len(data) > self.settings.max_chunk_bytes:
            raise ApiError("payload_too_large", "The chunk is too large.", details={"max_chunk_bytes": self.settings.max_chunk_bytes})
        if file_id is not None:
            if not is_file_id(file_id):
                raise ApiError("upload_not_found")
            return self.put(owner, file_id, index, data, part, total_chunks=total_chunks)
        self.reconciler.sweep_user(owner)
        upload_id = new_file_id()
        now = iso(self.clock())
        lease = self._reserve(owner, upload_id, part.size, new=True, lease=True)
        self.ledger.upload_started(upload_id, int(self.clock() * 1000))
        dek = self.encryption.new_wrapped_key(upload_id)
        fields = {"owner": owner, "mode": "seed", "total_chunks": total_chunks, "dek": dek, "created_at": now}
        try:
            write = self.store.put_chunk(
                upload_id,
                owner=owner,
                index=index,
                data=self._seal(upload_id, dek, index, data),
                part=part,
                now_iso=now,
                total_chunks=total_chunks,
                create_fields=fields,
                not_after_us=lease.fence,
            )
        except Late:
            raise _late() from None
        self._finish(owner, upload_id, lease, held=f"r>={part.size}", index_ms=None, due_us=write.deadline * US)
        self.metrics.upload_started()
        self._count_chunk(part)
        return ChunkReceipt(
            upload_id, index, total_chunks, write.received_chunks, write.received_bytes, True, True, part.size, "", part.crc32c, part.blake3
        )

    # -- completion ------------------------------------------------------------
    def complete(
        self,
        owner: str,
        upload_id: str,
        *,
        name: str | None = None,
        mime_type: str | None = None,
        total_size: int | None = None,
        expires_ts: int | None = None,
        kind: str = "file",
        one_request: bool = False,
        read: list | None = None,
    ) -> FileRecord:
        """Check the upload is whole and its checksums, then publish it as a file.

        The file's CRC32C and composite come from the part table; only an upload that wants its
        SHA-256 hashes the file (resuming this process's running digest, reading back the rest).
        ``read``: the upload and its part table as already read (``FileStore.queue_upload(parts=True)``).
        """
        if name is not None:
            name = validate_name(name, self.settings.max_name_bytes)
        if mime_type is not None:
            mime_type = validate_mime_type(mime_type)
        state = self._upload(owner, upload_id, read)
        name = name if name is not None else state.name
        if not name:
            raise ApiError(
                "validation_error",
                "This upload has no name yet: give one.",
                details={"json": {"name": ["Missing data for required field."]}},
            )
        mime_type = mime_type or state.mime_type or validate_mime_type(None)
        expires_ts = self._check_expiry(expires_ts) if expires_ts is not None else state.file_expires
        if state.received_chunks < state.total_chunks:
            raise ApiError("upload_incomplete", details=missing_details(self.store.missing_chunks(upload_id, state.total_chunks)))
        size = state.received_bytes
        declared = total_size if total_size is not None else state.total_size
        if declared is not None and declared != size:
            raise ApiError("size_mismatch", details={"declared": declared, "stored": size})
        parts = self.store.decode_parts(read[2]) if read and len(read) > 2 else self.store.parts(upload_id)
        ordered = [parts[i] for i in range(state.total_chunks) if i in parts]
        if len(ordered) < state.total_chunks:
            raise ApiError("upload_incomplete", details=missing_details([i for i in range(state.total_chunks) if i not in parts]))
        if state.want_sha256:
            sha256 = self._hash(upload_id, state, parts).sha256
        else:  # nothing is read back: every chunk must still be there, at its size
            self._check_lengths(upload_id, state, parts)
            sha256 = ""
        if state.sha256 and state.sha256 != sha256:
            self.metrics.checksum_failure("client")
            raise ApiError(
                "checksum_mismatch",
                "The file's SHA-256 is not the one declared when the upload was created.",
                details={"declared": state.sha256, "computed": sha256},
            )
        blake3_composite = composite(ordered)
        now = self.clock()
        created_ms = int(now * 1000)
        record = FileRecord(
            id=upload_id,
            name=name,
            size=size,
            owner=owner,
            created_at=iso(now),
            updated_at=iso(now),
            mime_type=mime_type,
            sha256=sha256,
            kind=kind,
            total_chunks=state.total_chunks,
            chunk_size=_uniform_chunk_size(state, ordered),
            crc32c=file_crc32c(ordered),
            composite_blake3=blake3_composite,
            composite_sha256="" if blake3_composite else composite_sha256(ordered),
            expires_at=iso(expires_ts) if expires_ts else "",
            expires_ts=expires_ts or 0,
            created_ms=created_ms,
            dek=state.dek,
        )
        lease = self._charge(owner, upload_id, size, created_ms)
        self.ledger.index_global(upload_id, created_ms, size)
        try:
            self.store.commit(
                upload_id,
                owner=owner,
                total_chunks=state.total_chunks,
                size=size,
                meta=record.to_meta(),
                expires_ts=expires_ts,
                not_after_us=lease.fence,
            )
        except Late:
            raise _late() from None
        self.ledger.upload_ended(upload_id)
        self._finish(owner, upload_id, lease, held=f"c:{size}", index_ms=created_ms, due_us=expires_ts * US if expires_ts else None)
        if not one_request:
            self.metrics.upload_completed()
        log.info(
            "file_created", file_id=upload_id, owner=owner, size=size, chunks=state.total_chunks, kind=kind, encrypted=record.encrypted
        )
        return record

    def _hash(self, upload_id: str, state: UploadState, parts: dict[int, Part]) -> FileDigest:
        """The file's digest: this process's running digest of the first chunks, then the rest read back one at a time."""
        start, digest = self.running.take(upload_id)
        sealer = self.encryption.sealer(upload_id, state.dek)
        self._check_lengths(upload_id, state, parts, start)
        if start == state.total_chunks:
            return digest

        def fetch(index: int):
            return next(iter(self.store.fetch_chunks(upload_id, [index])))

        # the next chunk is read while this one is hashed: two chunks in memory at a time
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="redfile-complete") as ahead:
            pending = ahead.submit(fetch, start)
            for index in range(start, state.total_chunks):
                stored, part = pending.result()
                if index + 1 < state.total_chunks:
                    pending = ahead.submit(fetch, index + 1)
                if stored is None or part is None:
                    raise ApiError("upload_incomplete", details=missing_details([index]))
                try:
                    plain = sealer.open(index, stored)
                except ChunkCorrupt:
                    raise self._corrupt(chunk_index=index) from None
                if len(plain) != part.size:
                    raise self._corrupt(chunk_index=index)
                digest.update(plain)
        return digest

    def _check_lengths(self, upload_id: str, state: UploadState, parts: dict[int, Part], end: int | None = None) -> None:
        """Chunks ``0..end-1`` (all when ``end`` is None), not read back: each must still be there, at its size (one round trip)."""
        end = state.total_chunks if end is None else end
        if not end:
            return
        overhead = SEAL_OVERHEAD if state.dek else 0
        lengths = self.store.chunk_lengths(upload_id, range(end))
        missing = [i for i, n in enumerate(lengths) if n == 0 and (i not in parts or parts[i].size > 0)]
        if missing:
            raise ApiError("upload_incomplete", details=missing_details(missing))
        for index, stored in enumerate(lengths):
            if index not in parts or stored != parts[index].size + overhead:
                raise self._corrupt(chunk_index=index)

    def abort(self, owner: str, upload_id: str, *, one_request: bool = False) -> None:
        """Remove the upload and every chunk of it; its reserved bytes return to the owner's quota."""
        self._upload(owner, upload_id)
        self.running.forget(upload_id)
        lease = self.ledger.lease(owner, upload_id)
        try:
            self.store.abort(upload_id, owner=owner, not_after_us=lease.fence)
        except Late:
            raise _late() from None
        except ApiError:
            # A concurrent abort or complete got there first, and its last step may have yielded to our
            # newer lease: settle the id now, as the sweep would when our lease ends (a gone upload stays gone).
            self.reconciler.reconcile(owner, upload_id, lease.score)
            raise
        self.ledger.unindex_global(upload_id)
        self.ledger.upload_ended(upload_id)
        self._finish(owner, upload_id, lease, held=None, index_ms=None, due_us=None)
        if not one_request:
            self.metrics.upload_aborted()
        log.info("upload_aborted", upload_id=upload_id, owner=owner)


def _uniform_chunk_size(state: UploadState, parts: list[Part]) -> int:
    if state.chunk_size:
        return state.chunk_size
    sizes = [p.size for p in parts]
    if not sizes or sizes[0] == 0:
        return 0
    if all(s == sizes[0] for s in sizes[:-1]) and sizes[-1] <= sizes[0]:
        return sizes[0]
    return 0


def missing_error(missing: list[int]) -> ApiError:
    return ApiError("upload_incomplete", details=missing_details(missing))


__all__ = ["ChunkMissing", "Uploads"]
