"""The values the domain hands to routes: a file, a chunk receipt, an upload's status."""

from __future__ import annotations

import secrets
from dataclasses import MISSING, dataclass, fields
from datetime import UTC, datetime
from typing import Any

MISSING_LIMIT = 100  # missing chunk indices named in an answer (all are counted)


def new_file_id() -> str:
    return secrets.token_hex(16)


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def missing_details(missing: list[int], count: int | None = None) -> dict:
    return {"missing": missing[:MISSING_LIMIT], "missing_count": len(missing) if count is None else count}


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
    chunk_size: int = 0  # every chunk but the last has this size; 0: sizes vary (see the part table)
    crc32c: str = ""
    expires_at: str = ""
    expires_ts: int = 0
    created_ms: int = 0
    dek: str = ""
    composite_blake3: str = ""
    folder: str = "/"  # a file stored before folders has none: the root

    @classmethod
    def from_meta(cls, meta: dict) -> FileRecord:
        values: dict[str, Any] = {}
        for name, default, is_int in _META_FIELDS:
            value = meta.get(name, default)  # a field missing from Redis: "" or 0
            values[name] = int(value or 0) if is_int else ("" if value is None else value)
        return cls(**values)

    def to_meta(self) -> dict:
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def encrypted(self) -> bool:
        return bool(self.dek)

    @property
    def etag(self) -> str:
        """A strong ETag: the file's SHA-256 when it has one, else its composite (a file's bytes never change)."""
        return self.sha256 or self.composite_blake3 or f"{self.id}-{self.crc32c}"


# FileRecord.from_meta's table: name, the value when Redis has none, whether it is an int
_META_FIELDS = tuple((f.name, None if f.default is MISSING else f.default, f.type in ("int", int)) for f in fields(FileRecord))


@dataclass(frozen=True)
class ChunkReceipt:
    file_id: str
    chunk_index: int
    total_chunks: int
    received_chunks: int
    received_bytes: int
    created: bool
    stored: bool = True
    size: int = 0
    sha256: str = ""  # only when the client sent one to verify
    crc32c: str = ""
    blake3: str = ""


@dataclass(frozen=True)
class UploadStatus:
    id: str
    name: str
    mime_type: str
    total_size: int | None
    chunk_size: int | None
    total_chunks: int
    received_chunks: int
    received_bytes: int
    missing: list[int]
    missing_count: int
    expires_at: str
    created_at: str
    updated_at: str
    sha256: str | None
    file_expires_at: str | None
    encrypted: bool
    checksum_algorithm: str | None = None
    folder: str = "/"


@dataclass(frozen=True)
class FileUpload:
    """A small file as a one-request upload carries it."""

    data: bytes
    name: str
    mime_type: str | None
    folder: str | None = None
