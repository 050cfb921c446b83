"""What the storage layer hands back: typed values read from Redis, and the errors of its contract."""

from __future__ import annotations

import json
from dataclasses import dataclass

from redfile_common.errors import ApiError
from redfile_files.checksums import Part
from redfile_files.storage.keys import LAYOUT, LEGACY, UploadMode, file_id_of, index_id
from redfile_files.validation import ROOT_FOLDER, folder_key


class ChunkMissing(Exception):
    """A chunk a file or completed upload needs is not in Redis."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"chunk {index} is missing")


class ChunksUnreachable(Exception):
    """A primary of a Redis Cluster that holds chunks of a file does not answer (down, its breaker open, its
    slots not served): the file cannot be read whole now."""


class OffsetMismatch(Exception):
    """A tus upload's offset is not the one the append expected: nothing changed."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        super().__init__(f"the upload's offset is {offset}")


def too_late() -> ApiError:
    """A fenced step ran after its lease's fence and changed nothing: the client may simply retry."""
    return ApiError("service_unavailable", "The operation took too long and was not applied; retry it.", headers={"Retry-After": "1"})


@dataclass(frozen=True)
class Reserved:
    """An upload holds at least ``bytes`` reserved against its owner's quota."""

    bytes: int


@dataclass(frozen=True)
class Charged:
    """A file is charged ``bytes`` (its size) to its owner's quota."""

    bytes: int


Holding = Reserved | Charged


@dataclass(frozen=True)
class Lease:
    score: int  # the id's due score while the lease holds (unix µs)
    fence: int  # the file-slot step must run before this (unix µs)


@dataclass(frozen=True)
class Quota:
    limit: int | None  # admin override; None: the default
    max_file: int | None
    used: int
    reserved: int


@dataclass(frozen=True)
class Stats:
    files: int
    bytes_stored: int
    active_uploads: int


@dataclass(frozen=True)
class ChunkWrite:
    stored: bool  # False: the same chunk was already there
    received_chunks: int
    received_bytes: int
    deadline: int


@dataclass(frozen=True)
class Appended:
    deadline: int
    length_set: bool  # this append set the upload's length


@dataclass(frozen=True)
class Segment:
    """One chunk of a tus append: its index, its plaintext's part record, and its stored bytes or staging key."""

    index: int
    part: Part
    data: bytes | memoryview | None = None
    staged_key: str | None = None


@dataclass(frozen=True)
class NewUpload:
    """The fields of a new upload hash (``files:{<id>}:upload``)."""

    owner: str
    mode: UploadMode
    total_chunks: int
    dek: str  # the data key, wrapped ("": stored in the clear)
    created_at: str
    total_size: int | None = None  # None: not declared (seed) or deferred (tus)
    chunk_size: int | None = None
    name: str = ""
    mime_type: str = ""
    sha256: str = ""  # declared by the client
    want_sha256: bool = False  # the file's SHA-256 is computed: declared, asked for, or a one-request file
    file_expires: int | None = None  # unix s the file will expire at
    tus_metadata: str = ""
    tus_concat: str = ""
    tus_parts: tuple[str, ...] = ()
    folder: str = "/"

    def fields(self) -> dict[str, str | int]:
        """As the hash stores it (a seed upload's only the fields it has)."""
        out: dict[str, str | int] = {"owner": self.owner, "mode": self.mode.value, "total_chunks": self.total_chunks, "dek": self.dek}
        out["created_at"] = self.created_at
        out["layout"] = LAYOUT
        if self.mode is UploadMode.SEED:
            return out
        out |= {
            "total_size": "" if self.total_size is None else self.total_size,
            "chunk_size": self.chunk_size or "",
            "name": self.name,
            "mime_type": self.mime_type,
            "sha256": self.sha256,
            "want_sha256": "1" if self.want_sha256 else "",
            "file_expires": self.file_expires or "",
            "updated_at": self.created_at,
            "folder": self.folder,
        }
        if self.mode is UploadMode.TUS:
            out |= {"tus_metadata": self.tus_metadata, "tus_concat": self.tus_concat, "tus_parts": " ".join(self.tus_parts)}
        return out


@dataclass(frozen=True)
class UploadState:
    id: str
    owner: str
    mode: UploadMode
    total_chunks: int
    total_size: int | None
    chunk_size: int | None
    name: str
    mime_type: str
    sha256: str  # declared by the client, or ""
    want_sha256: bool
    file_expires: int | None
    created_at: str
    updated_at: str
    received_chunks: int
    received_bytes: int
    deadline: int
    dek: str
    fields: dict[str, str]  # the whole hash, as text (tus reads its own fields from it)
    layout: str = LEGACY  # where its chunks are (keys.SPREAD, or keys.LEGACY: opened before chunks spread)
    folder: str = "/"  # where its file goes (a seed upload's, and one opened before folders: the root, unless completion says)

    def reserves(self) -> int:
        """The bytes the reconciler keeps reserved for it: a declared size, else what it received."""
        return (self.total_size or 0) if self.mode is UploadMode.SESSION else self.received_bytes


@dataclass(frozen=True)
class Snapshot:
    """The file slot of one id, read atomically: its file's meta and its upload, either or both None."""

    meta: dict | None
    upload: UploadState | None


def text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else str(value)


def _int(value: str, default: int | None = 0) -> int | None:
    return int(value) if value != "" else default


META_INTS = ("size", "total_chunks", "chunk_size", "created_ms", "expires_ts")


def decode_meta(raw: dict) -> dict | None:
    """A file's meta hash as a dict of text, its counts as ints; None when there is no file."""
    if not raw:
        return None
    meta: dict[str, str | int] = {text(k): text(v) for k, v in raw.items()}
    for field in META_INTS:
        meta[field] = int(meta.get(field) or 0)
    return meta


def decode_upload(upload_id: str, raw: dict, received_chunks: int) -> UploadState | None:
    """An upload hash (and how many parts it has); None when there is no upload."""
    u = {text(k): text(v) for k, v in raw.items()}
    if not u.get("owner") or not u.get("total_chunks") or u.get("mode") not in UploadMode.__members__.values():
        return None
    return UploadState(
        id=upload_id,
        owner=u["owner"],
        mode=UploadMode(u["mode"]),
        total_chunks=int(u["total_chunks"]),
        total_size=_int(u.get("total_size", ""), None),
        chunk_size=_int(u.get("chunk_size", ""), None),
        name=u.get("name", ""),
        mime_type=u.get("mime_type", ""),
        sha256=u.get("sha256", ""),
        want_sha256=bool(u.get("sha256")) or u.get("want_sha256") == "1",
        file_expires=_int(u.get("file_expires", ""), None),
        created_at=u.get("created_at", ""),
        updated_at=u.get("updated_at", ""),
        received_chunks=received_chunks,
        received_bytes=_int(u.get("received_bytes", "")) or 0,
        deadline=_int(u.get("deadline", "")) or 0,
        dek=u.get("dek", ""),
        fields=u,
        layout=u.get("layout") or LEGACY,
        folder=u.get("folder") or "/",
    )


def decode_parts(raw: dict) -> dict[int, Part]:
    return {int(k): Part.decode(v) for k, v in raw.items()}


def flat(fields: dict) -> list:
    """A mapping as ``field, value, ...`` script arguments (None as "")."""
    out: list = []
    for key, value in fields.items():
        out += [key, "" if value is None else value]
    return out


@dataclass(frozen=True)
class IndexRow:
    """Where a file is in its owner's name index: its folder and name (``json``: as the index scripts take it)."""

    folder: str
    name: str

    def json(self) -> str:
        return json.dumps({"f": folder_key(self.folder), "n": self.name.casefold()}, ensure_ascii=False, separators=(",", ":"))

    def entry(self, file_id: str) -> str:
        """Its member of the name index (``index.lua`` builds the same)."""
        return f"{folder_key(self.folder)}\0{self.name.casefold()}\0{index_id(file_id)}"

    @classmethod
    def of_entry(cls, entry: str) -> tuple[IndexRow, str] | None:
        """A name index member back to its row (the name case-folded) and file id; None when it is none."""
        parts = entry.split("\0")
        if len(parts) != 3 or not parts[0].startswith("/") or not parts[0].endswith("/") or len(parts[2]) != 22:
            return None
        try:
            file_id = file_id_of(parts[2])
        except ValueError:
            return None
        return cls(parts[0] if parts[0] == ROOT_FOLDER else parts[0][:-1], parts[1]), file_id

    @classmethod
    def of_rows(cls, raw) -> list[IndexRow]:
        """The rows in flight ``rows`` holds for an id (none when it holds nothing readable)."""
        try:
            listed = json.loads(text(raw)) if raw else []
            return [cls(r["f"] if r["f"] == ROOT_FOLDER else r["f"][:-1], r["n"]) for r in listed]
        except (ValueError, TypeError, KeyError, AttributeError):
            return []

    @classmethod
    def of_meta(cls, meta: dict) -> IndexRow:
        """A file's row from its ``meta`` (a file stored before folders is in the root)."""
        return cls(text(meta.get("folder")) or ROOT_FOLDER, text(meta.get("name")))


class Late(Exception):
    """A fenced step ran after its lease's fence: it changed nothing."""


def chunk_refused(status: str, result: list, index: int, part: Part, max_file_bytes: int) -> Exception:
    """What the client is told when ``put_chunk``'s script refused the chunk."""
    if status == "not_found":
        return ApiError("upload_not_found")
    if status == "conflict":
        return ApiError("chunk_conflict", details={"chunk_index": index})
    if status == "total_mismatch":
        return ApiError("invalid_chunk", "total_chunks differs from the upload's declared total.", details={"total_chunks": int(result[1])})
    if status == "bad_index":
        return ApiError("invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": int(result[1])})
    if status == "bad_size":
        return ApiError(
            "invalid_chunk",
            "The chunk's size is not the one this index must have.",
            details={"chunk_index": index, "expected_size": int(result[1]), "size": part.size},
        )
    if status == "too_large":
        return ApiError(
            "payload_too_large",
            "The upload would exceed the largest file size.",
            details={"max_file_bytes": max_file_bytes, "received_bytes": int(result[1])},
        )
    if status == "late":
        return Late()
    return ApiError("conflict", "An upload with this id already exists.")
