"""Checksums: per-chunk SHA-256 and CRC32C, the whole-file composite, and their wire forms.

* A chunk's **part** record, kept in the upload's (then the file's) part table,
  is ``"<size>:<sha256 hex>:<crc32c hex>"`` of its plaintext.
* The **composite** checksum of a file, as S3 computes it for multipart
  uploads: SHA-256 over the concatenated raw SHA-256 digests of its chunks in
  order, in hex, suffixed ``-<number of chunks>``.
* Clients send a chunk's checksums as hex or base64 (S3 sends base64), in
  ``X-Checksum-SHA256`` / ``X-Checksum-CRC32C`` headers or ``sha256`` / ``crc32c``
  fields; CRC32C is the 4-byte big-endian value.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import Iterable

import google_crc32c

from redfile_common.errors import ApiError

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEX8 = re.compile(r"^[0-9a-fA-F]{8}$")


@dataclass(frozen=True)
class Part:
    size: int
    sha256: str  # hex
    crc32c: str  # 8 hex digits

    def encode(self) -> str:
        return f"{self.size}:{self.sha256}:{self.crc32c}"

    @classmethod
    def decode(cls, raw: bytes | str) -> "Part":
        text = raw.decode() if isinstance(raw, bytes) else raw
        size, sha, crc = (text.split(":") + ["", ""])[:3]
        return cls(int(size), sha, crc)


class ChunkDigest:
    """SHA-256 and CRC32C of one chunk, fed piece by piece."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._crc = google_crc32c.Checksum()
        self.size = 0

    def update(self, data) -> None:
        self._sha.update(data)
        self._crc.update(data if isinstance(data, bytes) else bytes(data))  # google-crc32c takes bytes only
        self.size += len(data)

    def part(self) -> Part:
        return Part(self.size, self._sha.hexdigest(), self._crc.digest().hex())


def part_of(data) -> Part:
    digest = ChunkDigest()
    digest.update(data)
    return digest.part()


def crc32c_hex(data) -> str:
    return f"{google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data):08x}"


def composite(parts: Iterable[Part]) -> str:
    outer = hashlib.sha256()
    count = 0
    for part in parts:
        outer.update(bytes.fromhex(part.sha256))
        count += 1
    return f"{outer.hexdigest()}-{count}"


class FileDigest:
    """SHA-256 and CRC32C of a whole file, fed chunk by chunk in order."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()
        self._crc = google_crc32c.Checksum()

    def copy(self) -> "FileDigest":
        twin = FileDigest.__new__(FileDigest)
        twin._sha, twin._crc = self._sha.copy(), self._crc.copy()
        return twin

    def update(self, data) -> None:
        self._sha.update(data)
        self._crc.update(data if isinstance(data, bytes) else bytes(data))

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()

    @property
    def crc32c(self) -> str:
        return self._crc.digest().hex()


class RunningDigests:
    """Whole-file digests of uploads whose chunks this process received in order, so completion need not read them back.

    Chunk ``i`` of an upload is hashed into a *copy* of the digest of chunks
    ``0..i-1`` (``fork``), and the copy replaces it only once the chunk is
    acknowledged as stored (``advance``): the digest always covers exactly the
    bytes Redis holds for chunks ``0..next-1``, which never change afterwards
    (other bytes at a stored index are a conflict).  Completion resumes it
    from ``next`` (``take``), reading back only the chunks it does not cover.
    Chunks that arrive out of order, through another process, or after the
    entry was evicted (at most ``max_entries``, least recently advanced first)
    just leave more to read back.  Thread-safe; one per process.
    """

    def __init__(self, max_entries: int = 256) -> None:
        self.max_entries = max_entries
        self._lock = threading.Lock()
        self._entries: OrderedDict[str, tuple[int, FileDigest]] = OrderedDict()

    def fork(self, upload_id: str, index: int) -> FileDigest | None:
        """A digest to feed chunk ``index`` into, when it is the next one in order; else None."""
        with self._lock:
            entry = self._entries.get(upload_id)
            if entry is None:
                return FileDigest() if index == 0 else None
            following, digest = entry
            return digest.copy() if following == index else None

    def advance(self, upload_id: str, index: int, digest: FileDigest) -> None:
        """Chunk ``index`` is stored and ``digest`` (from ``fork``) includes it."""
        with self._lock:
            entry = self._entries.get(upload_id)
            if (entry[0] if entry else 0) != index:
                return  # another request advanced it first (the same chunk again)
            self._entries[upload_id] = (index + 1, digest)
            self._entries.move_to_end(upload_id)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)

    def take(self, upload_id: str) -> tuple[int, FileDigest]:
        """``(next, digest)``: the digest of chunks ``0..next-1`` (``(0, empty)`` when none); forgotten here."""
        with self._lock:
            entry = self._entries.pop(upload_id, None)
        return entry if entry is not None else (0, FileDigest())

    def forget(self, upload_id: str) -> None:
        with self._lock:
            self._entries.pop(upload_id, None)


def _bad(field: str, what: str) -> ApiError:
    return ApiError("validation_error", f"The request is not valid: {field}: {what}", details={"headers": {field: [what]}})


def parse_sha256_value(value: str | None, field: str = "X-Checksum-SHA256") -> str | None:
    """Hex (64 digits) or base64 (32 bytes) SHA-256; returned as lower-case hex."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if _HEX64.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise _bad(field, "Must be a SHA-256 digest in hex or base64.")
    return raw.hex()


def parse_crc32c_value(value: str | None, field: str = "X-Checksum-CRC32C") -> str | None:
    """Hex (8 digits) or base64 (4 bytes, big-endian) CRC32C; returned as lower-case hex."""
    if value is None or value.strip() == "":
        return None
    value = value.strip()
    if _HEX8.match(value):
        return value.lower()
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 4:
        raise _bad(field, "Must be a CRC32C in hex (8 digits) or base64 (4 bytes, big-endian).")
    return raw.hex()


def verify(part: Part, index: int, *, sha256: str | None, crc32c: str | None) -> None:
    """Raise 400 ``checksum_mismatch`` when a checksum the client sent does not match the bytes."""
    bad = [name for name, want, have in (("sha256", sha256, part.sha256), ("crc32c", crc32c, part.crc32c)) if want and want != have]
    if bad:
        raise ApiError("checksum_mismatch", details={"chunk_index": index, "checksums": bad})


def sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
