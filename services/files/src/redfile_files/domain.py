"""What the files service does, without HTTP: uploads, files, texts, ownership.

Callers pass an ``actor`` (anything with ``username`` and ``is_admin``, e.g.
the request's Principal) or ``None`` for a trusted service call.  A user sees
and changes only their own files: another user's file is reported exactly as
a missing one (404), so ids cannot be probed.  Admins act on any file.
Uploads are always the uploader's own, admins included.
"""

from __future__ import annotations

import hashlib
import secrets
import time
from dataclasses import dataclass, fields
from datetime import datetime, timezone
from typing import Iterator, Protocol

import structlog

from redfile_common.errors import ApiError

from .settings import FilesSettings
from .storage import MISSING_LIMIT, ChunkMissing, FileStore
from .validation import decode_cursor, encode_cursor, is_file_id, validate_mime_type, validate_name

log = structlog.get_logger("redfile.files")

TEXT_MIME_TYPE = "text/plain; charset=utf-8"


class Actor(Protocol):
    username: str
    is_admin: bool


@dataclass(frozen=True)
class FileRecord:
    id: str
    name: str
    size: int
    owner: str
    created_at: str
    updated_at: str
    mime_type: str
    sha256: str
    kind: str
    total_chunks: int

    @classmethod
    def from_meta(cls, meta: dict) -> "FileRecord":
        return cls(**{f.name: meta.get(f.name, "") for f in fields(cls)})

    def to_meta(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass(frozen=True)
class ChunkReceipt:
    file_id: str
    chunk_index: int
    total_chunks: int
    received_chunks: int
    received_bytes: int
    created: bool


def new_file_id() -> str:
    return secrets.token_hex(16)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def missing_details(missing: list[int]) -> dict:
    return {"missing": missing[:MISSING_LIMIT], "missing_count": len(missing)}


class FilesService:
    def __init__(self, store: FileStore, settings: FilesSettings, clock=time.time) -> None:
        self.store = store
        self.settings = settings
        self.clock = clock

    # -- chunked uploads -----------------------------------------------------
    def receive_chunk(
        self, owner: str, *, file_id: str | None, chunk_index: int, total_chunks: int, data: bytes, sha256: str | None
    ) -> ChunkReceipt:
        """Store one chunk; a missing ``file_id`` starts a new upload."""
        create = file_id is None
        if not create and not is_file_id(file_id):
            raise ApiError("upload_not_found")
        if not (1 <= total_chunks <= self.settings.max_chunks and 0 <= chunk_index < total_chunks):
            raise ApiError("invalid_chunk", "chunk_index or total_chunks is out of range.")
        if len(data) > self.settings.max_chunk_bytes:
            raise ApiError("payload_too_large", "The chunk is too large.", details={"max_chunk_bytes": self.settings.max_chunk_bytes})
        digest = hashlib.sha256(data).hexdigest()
        if sha256 is not None and sha256 != digest:
            raise ApiError("checksum_mismatch", details={"chunk_index": chunk_index})
        upload_id = new_file_id() if create else file_id
        write = self.store.put_chunk(
            upload_id, owner=owner, total_chunks=total_chunks, index=chunk_index, data=data,
            sha256=digest, create=create, now_iso=iso(self.clock()),
        )  # fmt: skip
        return ChunkReceipt(upload_id, chunk_index, total_chunks, write.received_chunks, write.received_bytes, create)

    def complete_upload(
        self, owner: str, *, file_id: str, name: str, mime_type: str | None, total_size: int, kind: str = "file"
    ) -> FileRecord:
        """Check the upload is whole, hash it chunk by chunk, then publish it as a file."""
        name = validate_name(name, self.settings.max_name_bytes)
        mime_type = validate_mime_type(mime_type)
        if not is_file_id(file_id):
            raise ApiError("upload_not_found")
        state = self.store.get_upload(file_id)
        if state is None or state.owner != owner:
            raise ApiError("upload_not_found")
        if state.received_chunks < state.total_chunks:
            raise ApiError("upload_incomplete", details=missing_details(self.store.missing_chunks(file_id, state.total_chunks)))
        if state.received_bytes != total_size:
            raise ApiError("size_mismatch", details={"declared": total_size, "stored": state.received_bytes})
        digest = hashlib.sha256()
        try:
            for data in self.store.iter_chunks(file_id, state.total_chunks):
                digest.update(data)
        except ChunkMissing as exc:
            raise ApiError("upload_incomplete", details=missing_details([exc.index])) from None
        now = self.clock()
        record = FileRecord(
            id=file_id, name=name, size=total_size, owner=owner, created_at=iso(now), updated_at=iso(now),
            mime_type=mime_type, sha256=digest.hexdigest(), kind=kind, total_chunks=state.total_chunks,
        )  # fmt: skip
        self.store.commit_upload(file_id, owner=owner, meta=record.to_meta(), created_ms=int(now * 1000))
        log.info("file_created", file_id=file_id, owner=owner, size=total_size, chunks=state.total_chunks, kind=kind)
        return record

    # -- one-request uploads and texts ---------------------------------------
    def create_file(self, owner: str, data: bytes, *, name: str, mime_type: str | None, kind: str = "file") -> FileRecord:
        """Store a small file in one go, through the same chunk and commit path as chunked uploads."""
        name = validate_name(name, self.settings.max_name_bytes)
        mime_type = validate_mime_type(mime_type)
        if len(data) > self.settings.max_single_upload_bytes:
            raise ApiError(
                "payload_too_large", "The file is too large for a one-request upload; use /upload_chunk.",
                details={"max_single_upload_bytes": self.settings.max_single_upload_bytes},
            )  # fmt: skip
        size = self.settings.max_chunk_bytes
        pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
        upload_id = None
        for index, piece in enumerate(pieces):
            receipt = self.receive_chunk(
                owner, file_id=upload_id, chunk_index=index, total_chunks=len(pieces), data=piece, sha256=None
            )
            upload_id = receipt.file_id
        return self.complete_upload(owner, file_id=upload_id, name=name, mime_type=mime_type, total_size=len(data), kind=kind)

    def create_text(self, owner: str, content: str, name: str | None = None) -> FileRecord:
        if name is None:
            name = datetime.fromtimestamp(self.clock(), timezone.utc).strftime("snippet-%Y%m%d-%H%M%S.txt")
        try:
            data = content.encode("utf-8")
        except UnicodeEncodeError:
            raise ApiError("validation_error", "The content is not valid Unicode.") from None
        return self.create_file(owner, data, name=name, mime_type=TEXT_MIME_TYPE, kind="text")

    def read_text(self, actor: Actor | None, file_id: str) -> tuple[FileRecord, str]:
        record = self.get_file(actor, file_id)
        if record.kind != "text":
            raise ApiError("file_not_found", "No such text.")
        return record, b"".join(self.read_chunks(record)).decode("utf-8", errors="replace")

    # -- files ---------------------------------------------------------------
    def get_file(self, actor: Actor | None, file_id: str) -> FileRecord:
        """The file, if ``actor`` may see it; else ``file_not_found``."""
        meta = self.store.get_meta(file_id) if is_file_id(file_id) else None
        if meta is None or (actor is not None and not actor.is_admin and meta["owner"] != actor.username):
            raise ApiError("file_not_found")
        return FileRecord.from_meta(meta)

    def read_chunks(self, record: FileRecord) -> Iterator[bytes]:
        """The file's bytes, chunk by chunk; a chunk vanishing mid-way (a concurrent delete) ends it with ChunkMissing."""
        return self.store.iter_chunks(record.id, record.total_chunks)

    def list_files(self, owner: str | None, *, limit: int, cursor: str | None) -> tuple[list[FileRecord], str | None]:
        """A page of ``owner``'s files (every file when None), newest first."""
        ids, last = self.store.page(owner, limit, decode_cursor(cursor))
        items = [FileRecord.from_meta(m) for m in self.store.get_metas(ids) if m is not None]
        return items, (encode_cursor(*last) if last else None)

    def rename(self, actor: Actor | None, file_id: str, new_name: str) -> FileRecord:
        new_name = validate_name(new_name, self.settings.max_name_bytes)
        self.get_file(actor, file_id)
        if not self.store.rename(file_id, new_name, iso(self.clock())):
            raise ApiError("file_not_found")
        return self.get_file(actor, file_id)

    def delete(self, actor: Actor | None, file_id: str) -> None:
        record = self.get_file(actor, file_id)
        if not self.store.delete(file_id):
            raise ApiError("file_not_found")
        log.info("file_deleted", file_id=file_id, owner=record.owner, by=actor.username if actor else "service")

    def delete_owner_files(self, owner: str) -> int:
        """Delete every file of ``owner``; returns how many were deleted."""
        deleted = 0
        while True:
            ids = self.store.owner_file_ids(owner, 500)
            if not ids:
                return deleted
            deleted += sum(self.store.delete(file_id, only_owner=owner) for file_id in ids)
