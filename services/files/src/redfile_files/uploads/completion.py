"""Completing an upload: check it is whole, compute the file's checksums, publish it as a file.

The file's CRC32C and composite come from the part table (nothing is read back).  Only an upload
that wants its SHA-256 is hashed: this process's running digest covers the chunks it received in
order, and the rest are read back one at a time (the next fetched while this one is hashed).  An
upload that does not want it has only its chunks' stored lengths checked, in one round trip.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import structlog

from redfile_common import deadline
from redfile_common.errors import ApiError
from redfile_files.checksums import FileDigest, Part, composite, file_crc32c
from redfile_files.crypto import SEAL_OVERHEAD, ChunkCorrupt
from redfile_files.records import FileRecord, iso, missing_details
from redfile_files.storage.files import read_parts
from redfile_files.storage.records import UploadState
from redfile_files.uploads.service import Uploads
from redfile_files.validation import guess_mime_type, validate_folder, validate_mime_type, validate_name

log = structlog.get_logger("redfile.files")


class Completion:
    """``complete`` for every kind of upload (sessions, seed uploads, tus, one-request files)."""

    def __init__(self, uploads: Uploads) -> None:
        self.uploads = uploads
        self.store = uploads.store
        self.lifecycle = uploads.lifecycle
        self.metrics = uploads.metrics

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
        folder: str | None = None,
    ) -> FileRecord:
        """Check the upload is whole and its checksums, then publish it as a file.

        ``read``: the upload and its part table as ``prefetch`` read them with the token check.
        """
        uploads = self.uploads
        if name is not None:
            name = validate_name(name, uploads.settings.max_name_bytes)
        if folder is not None:
            folder = validate_folder(folder)
        if mime_type is not None:
            mime_type = validate_mime_type(mime_type)
        state = uploads.upload(owner, upload_id, read)
        name = name if name is not None else state.name
        if not name:
            raise ApiError(
                "validation_error",
                "This upload has no name yet: give one.",
                details={"json": {"name": ["Missing data for required field."]}},
            )
        mime_type = mime_type or state.mime_type or guess_mime_type(name)
        expires_ts = uploads.check_expiry(expires_ts) if expires_ts is not None else state.file_expires
        if state.received_chunks < state.total_chunks:
            raise ApiError("upload_incomplete", details=missing_details(self.store.missing_chunks(upload_id, state.total_chunks)))
        size = state.received_bytes
        declared = total_size if total_size is not None else state.total_size
        if declared is not None and declared != size:
            raise ApiError("size_mismatch", details={"declared": declared, "stored": size})
        parts = (read_parts(read) if read else None) or self.store.parts(upload_id)
        ordered = [parts[i] for i in range(state.total_chunks) if i in parts]
        if len(ordered) < state.total_chunks:
            raise ApiError("upload_incomplete", details=missing_details([i for i in range(state.total_chunks) if i not in parts]))
        if state.want_sha256:
            sha256 = self._hash(state, parts).sha256
        else:  # nothing is read back: every chunk must still be there, at its size
            self._check_lengths(state, parts)
            sha256 = ""
        if state.sha256 and state.sha256 != sha256:
            self.metrics.checksum_failure("client")
            raise ApiError(
                "checksum_mismatch",
                "The file's SHA-256 is not the one declared when the upload was created.",
                details={"declared": state.sha256, "computed": sha256},
            )
        now = uploads.clock()
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
            composite_blake3=composite(ordered),
            expires_at=iso(expires_ts) if expires_ts else "",
            expires_ts=expires_ts or 0,
            created_ms=int(now * 1000),
            dek=state.dek,
            folder=folder if folder is not None else state.folder,
        )
        self.lifecycle.commit(record)
        if not one_request:
            self.metrics.upload_completed()
        log.info(
            "file_created", file_id=upload_id, owner=owner, size=size, chunks=state.total_chunks, kind=kind, encrypted=record.encrypted
        )
        return record

    def _hash(self, state: UploadState, parts: dict[int, Part]) -> FileDigest:
        """The file's digest: this process's running digest of the first chunks, then the rest read back one at a time."""
        upload_id = state.id
        start, digest = self.uploads.running.take(upload_id)
        sealer = self.uploads.encryption.sealer(upload_id, state.dek)
        self._check_lengths(state, parts, start)
        if start == state.total_chunks:
            return digest
        # the next chunk is read while this one is hashed: two chunks in memory at a time
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="redfile-complete") as ahead:
            pending = ahead.submit(deadline.carried(self.store.fetch_chunk), upload_id, start)  # with the request's budget
            for index in range(start, state.total_chunks):
                stored, part = pending.result()
                if index + 1 < state.total_chunks:
                    pending = ahead.submit(deadline.carried(self.store.fetch_chunk), upload_id, index + 1)
                if stored is None or part is None:
                    raise ApiError("upload_incomplete", details=missing_details([index]))
                try:
                    plain = sealer.open(index, stored)
                except ChunkCorrupt:
                    raise self.uploads.corrupt(chunk_index=index) from None
                if len(plain) != part.size:
                    raise self.uploads.corrupt(chunk_index=index)
                digest.update(plain)
        return digest

    def _check_lengths(self, state: UploadState, parts: dict[int, Part], end: int | None = None) -> None:
        """Chunks ``0..end-1`` (all when ``end`` is None), not read back: each must still be there, at its size (one round trip)."""
        end = state.total_chunks if end is None else end
        if not end:
            return
        overhead = SEAL_OVERHEAD if state.dek else 0
        lengths = self.store.chunk_lengths(state.id, parts, range(end), state.layout)
        missing = [i for i, n in enumerate(lengths) if n == 0 and (i not in parts or parts[i].size > 0)]
        if missing:
            raise ApiError("upload_incomplete", details=missing_details(missing))
        for index, stored in enumerate(lengths):
            if index not in parts or stored != parts[index].size + overhead:
                raise self.uploads.corrupt(chunk_index=index)


def _uniform_chunk_size(state: UploadState, parts: list[Part]) -> int:
    """Every chunk but the last has this size (0: sizes vary): a session's chunk size, else what the parts show."""
    if state.chunk_size:
        return state.chunk_size
    sizes = [p.size for p in parts]
    if not sizes or sizes[0] == 0:
        return 0
    if all(s == sizes[0] for s in sizes[:-1]) and sizes[-1] <= sizes[0]:
        return sizes[0]
    return 0
