"""Checksums: every chunk's BLAKE3 and CRC32C, SHA-256 when asked for, the whole-file checksums, and their wire forms.

What the server computes for every byte is cheap: BLAKE3 (cryptographic,
256 bits) and CRC32C (hardware), both several GB/s in one thread.  SHA-256 is
computed only where someone asked for it, because without the CPU's SHA
extensions it runs at a quarter of a GB/s and would bound every upload
(docs/performance.md): a chunk's SHA-256 when the client sent one to verify, a
file's when its upload declared it or asked for it.

* A chunk's **part** record, kept in the upload's (then the file's) part table,
  is ``"<size>:<crc32c hex>:<blake3 hex>"`` of its plaintext: the same bytes
  always make the same record, so a repeated chunk is a no-op by string equality.
* The file's **CRC32C** covers the whole file; it is combined from the chunks'
  CRC32Cs (``crc32c_combine``), so no chunk is read again, in any order.
* The file's **composite** checksum, as Dropbox's content hash and S3's
  multipart checksums are built: BLAKE3 over the concatenated raw BLAKE3
  digests of its chunks in order, in hex, suffixed ``-<number of chunks>``.
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
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import blake3
import google_crc32c

from redfile_common.errors import ApiError

_HEX64 = re.compile(r"^[0-9a-fA-F]{64}$")
_HEX8 = re.compile(r"^[0-9a-fA-F]{8}$")
# What the two parsers below take, for the documents (whitespace around, or nothing, is no checksum)
SHA256_HEADER_PATTERN = r"^\s*(?:[0-9a-fA-F]{64}|[A-Za-z0-9+/]{43}=)?\s*$"
CRC32C_HEADER_PATTERN = r"^\s*(?:[0-9a-fA-F]{8}|[A-Za-z0-9+/]{6}==)?\s*$"


@dataclass(frozen=True)
class Part:
    """What a chunk's plaintext is: its size, CRC32C (8 hex digits) and BLAKE3 (hex)."""

    size: int
    crc32c: str
    blake3: str

    def encode(self) -> str:
        return f"{self.size}:{self.crc32c}:{self.blake3}"

    @classmethod
    def decode(cls, raw: bytes | str) -> Part:
        """A part record; ``ValueError`` when it is not one."""
        text = raw.decode() if isinstance(raw, bytes) else raw
        size, crc, b3 = text.split(":")
        return cls(int(size), crc, b3)


class ChunkDigest:
    """BLAKE3 and CRC32C of one chunk (and its SHA-256 when ``sha256``), fed piece by piece."""

    def __init__(self, sha256: bool = False) -> None:
        self._b3 = blake3.blake3()
        self._crc = google_crc32c.Checksum()
        self._sha = hashlib.sha256() if sha256 else None
        self.size = 0

    def update(self, data) -> None:
        self._b3.update(data)
        self._crc.update(data if isinstance(data, bytes) else bytes(data))  # google-crc32c takes bytes only
        if self._sha is not None:
            self._sha.update(data)
        self.size += len(data)

    def part(self) -> Part:
        """The part record (without the SHA-256: the same bytes always make the same record)."""
        return Part(self.size, self._crc.digest().hex(), self._b3.hexdigest())

    @property
    def sha256(self) -> str:
        """The chunk's SHA-256 in hex, or "" when it was not asked for."""
        return self._sha.hexdigest() if self._sha is not None else ""


def part_of(data) -> Part:
    digest = ChunkDigest()
    digest.update(data)
    return digest.part()


def sha256_hex(data) -> str:
    return hashlib.sha256(data).hexdigest()


def crc32c_hex(data) -> str:
    return f"{google_crc32c.value(bytes(data) if isinstance(data, memoryview) else data):08x}"


# -- CRC32C of a concatenation from the CRC32Cs of its pieces (zlib's crc32_combine, for CRC32C's polynomial) --

_POLY = 0x82F63B78  # CRC32C (Castagnoli), reflected


def _multmodp(a: int, b: int) -> int:
    """a(x) * b(x) modulo the polynomial, both reflected."""
    m, p = 1 << 31, 0
    while True:
        if a & m:
            p ^= b
            if a & (m - 1) == 0:
                return p
        m >>= 1
        b = (b >> 1) ^ _POLY if b & 1 else b >> 1


def _x2n_table() -> list[int]:
    table, p = [], 1 << 30  # x^1
    for _ in range(32):
        table.append(p)
        p = _multmodp(p, p)
    return table


_X2N = _x2n_table()  # x^(2^k) modulo the polynomial


@lru_cache(maxsize=64)  # a file's chunks share one size: one shift to compute per file, not per chunk
def _x8nmodp(n: int) -> int:
    """x^(8n) modulo the polynomial: the shift of n bytes."""
    p, k = 1 << 31, 3  # x^0
    while n:
        if n & 1:
            p = _multmodp(_X2N[k & 31], p)
        n >>= 1
        k += 1
    return p


def crc32c_combine(crc1: int, crc2: int, len2: int) -> int:
    """CRC32C of A + B from CRC32C(A), CRC32C(B) and len(B)."""
    return _multmodp(_x8nmodp(len2), crc1) ^ crc2


def file_crc32c(parts: Iterable[Part]) -> str:
    """The whole file's CRC32C, 8 hex digits, from its chunks' parts in order."""
    crc = 0
    for part in parts:
        crc = crc32c_combine(crc, int(part.crc32c, 16), part.size)
    return f"{crc:08x}"


def composite(parts: Iterable[Part]) -> str:
    """The file's composite checksum: BLAKE3 over its chunks' BLAKE3 digests in order, then ``-<number of chunks>``."""
    outer = blake3.blake3()
    count = 0
    for part in parts:
        outer.update(bytes.fromhex(part.blake3))
        count += 1
    return f"{outer.hexdigest()}-{count}"


class FileDigest:
    """SHA-256 of a whole file, fed chunk by chunk in order (only for uploads that asked for it)."""

    def __init__(self) -> None:
        self._sha = hashlib.sha256()

    def copy(self) -> FileDigest:
        twin = FileDigest.__new__(FileDigest)
        twin._sha = self._sha.copy()
        return twin

    def update(self, data) -> None:
        self._sha.update(data)

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


class RunningDigests:
    """Whole-file SHA-256s of uploads (that asked for one) whose chunks this process received in order, so completion
    need not read them back.

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


def verify(part: Part, index: int, *, sha256: str | None, crc32c: str | None, computed_sha256: str = "") -> None:
    """Raise 400 ``checksum_mismatch`` when a checksum the client sent does not match the bytes.

    ``computed_sha256``: the chunk's SHA-256, computed because the client sent ``sha256`` (part
    records carry none).
    """
    bad = [name for name, want, have in (("sha256", sha256, computed_sha256), ("crc32c", crc32c, part.crc32c)) if want and want != have]
    if bad:
        raise ApiError("checksum_mismatch", details={"chunk_index": index, "checksums": bad})


def sha256_b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
