"""tus 1.0.0 header values: parsing and checking, with no Flask and no Redis.

* ``Upload-Metadata``: comma-separated ``key base64value`` pairs (the value
  may be left out); keys non-empty ASCII without spaces or commas, unique.
  The stored and echoed form is the normalised one built from the parsed
  pairs, so nothing a client sends reaches a response header unchecked.
* ``Upload-Concat``: ``partial``, or ``final;<url> <url> ...`` whose URLs
  (absolute or relative) end in ``/tus/<id>``.
* ``Upload-Checksum``: ``<algorithm> <base64 digest>`` of the request body;
  algorithms in ``ALGORITHMS``.  ``BodyChecksum`` hashes the body as it
  arrives; with a trailer, the algorithm is known only at the end, so every
  algorithm is computed and the trailer picks one.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit

import google_crc32c

from redfile_common.errors import ApiError

TUS_VERSION = "1.0.0"
OFFSET_CONTENT_TYPE = "application/offset+octet-stream"
EXTENSIONS = (
    "creation",
    "creation-with-upload",
    "creation-defer-length",
    "expiration",
    "checksum",
    "checksum-trailer",
    "termination",
    "concatenation",
    "concatenation-unfinished",
)
MAX_METADATA_CHARS = 4096
MAX_CONCAT_PARTS = 1000
_KEY = re.compile(r"^[!-+\--~]+$")  # printable ASCII but space and comma
_UPLOAD_PATH = re.compile(r"/tus/([0-9a-f]{32})/?$")
_URL_CHARS = re.compile(r"^[!-~]+$")
_UINT = re.compile(r"^[0-9]{1,19}$")


class _Crc32:
    digest_size = 4

    def __init__(self) -> None:
        self.value = 0

    def update(self, data) -> None:
        self.value = zlib.crc32(data, self.value)

    def digest(self) -> bytes:
        return self.value.to_bytes(4, "big")


class _Crc32c:
    digest_size = 4

    def __init__(self) -> None:
        self._crc = google_crc32c.Checksum()

    def update(self, data) -> None:
        self._crc.update(data if isinstance(data, bytes) else bytes(data))

    def digest(self) -> bytes:
        return self._crc.digest()


ALGORITHMS: dict[str, Callable] = {
    "md5": hashlib.md5,
    "sha1": hashlib.sha1,
    "sha256": hashlib.sha256,
    "sha512": hashlib.sha512,
    "crc32": _Crc32,
    "crc32c": _Crc32c,
}


def bad(message: str, header: str) -> ApiError:
    return ApiError("bad_request", message, details={"header": header})


def parse_uint(value: str | None, header: str) -> int | None:
    """A non-negative integer header (None when absent); anything else is a 400."""
    if value is None:
        return None
    value = value.strip()
    if not _UINT.match(value):
        raise bad(f"{header} must be a non-negative integer.", header)
    return int(value)


@dataclass(frozen=True)
class Metadata:
    raw: str  # normalised, safe to echo in a header
    values: dict[str, bytes | None]

    def text(self, *keys: str) -> str | None:
        """The first of ``keys`` that is present, as UTF-8 text (a 400 when it is not UTF-8)."""
        for key in keys:
            value = self.values.get(key)
            if value:
                try:
                    return value.decode("utf-8")
                except UnicodeDecodeError:
                    raise bad(f"Upload-Metadata {key} must be UTF-8 text.", "Upload-Metadata") from None
        return None


def parse_metadata(value: str | None) -> Metadata:
    if value is None or value.strip() == "":
        return Metadata("", {})
    if len(value) > MAX_METADATA_CHARS:
        raise bad(f"Upload-Metadata must be at most {MAX_METADATA_CHARS} characters.", "Upload-Metadata")
    values: dict[str, bytes | None] = {}
    items: list[str] = []
    for item in value.split(","):
        key, _, encoded = item.strip().partition(" ")
        encoded = encoded.strip()
        if not _KEY.match(key):
            raise bad("Upload-Metadata keys must be non-empty ASCII without spaces or commas.", "Upload-Metadata")
        if key in values:
            raise bad(f"Upload-Metadata key {key!r} appears twice.", "Upload-Metadata")
        try:
            values[key] = base64.b64decode(encoded, validate=True) if encoded else None
        except (binascii.Error, ValueError):
            raise bad(f"Upload-Metadata value of {key!r} is not base64.", "Upload-Metadata") from None
        items.append(f"{key} {encoded}" if encoded else key)
    return Metadata(",".join(items), values)


@dataclass(frozen=True)
class Concat:
    kind: str  # "" (a plain upload), "partial" or "final"
    raw: str  # normalised header value, echoed on HEAD
    parts: tuple[str, ...] = ()  # a final's partial upload ids, in order


def parse_concat(value: str | None) -> Concat:
    if value is None or value.strip() == "":
        return Concat("", "")
    value = value.strip()
    if value == "partial":
        return Concat("partial", "partial")
    kind, sep, urls = value.partition(";")
    if kind.strip() != "final" or not sep:
        raise bad("Upload-Concat must be 'partial' or 'final;<urls>'.", "Upload-Concat")
    parts, seen = [], []
    for url in urls.split():
        match = _UPLOAD_PATH.search(urlsplit(url).path) if _URL_CHARS.match(url) else None
        if match is None:
            raise bad(f"Upload-Concat names {url[:100]!r}, which is not an upload URL of this server.", "Upload-Concat")
        parts.append(match.group(1))
        seen.append(url)
    if not parts:
        raise bad("Upload-Concat final names no partial upload.", "Upload-Concat")
    if len(parts) > MAX_CONCAT_PARTS:
        raise bad(f"Upload-Concat may name at most {MAX_CONCAT_PARTS} partial uploads.", "Upload-Concat")
    return Concat("final", "final;" + " ".join(seen), tuple(parts))


def parse_checksum(value: str, header: str = "Upload-Checksum") -> tuple[str, bytes]:
    """``<algorithm> <base64>`` into (algorithm, digest); an unknown algorithm or a malformed value is a 400."""
    algorithm, _, encoded = value.strip().partition(" ")
    if algorithm not in ALGORITHMS:
        raise ApiError(
            "bad_request", f"{header}: unsupported checksum algorithm.", details={"header": header, "supported": sorted(ALGORITHMS)}
        )
    try:
        digest = base64.b64decode(encoded.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise bad(f"{header}: the checksum must be base64.", header) from None
    if len(digest) != ALGORITHMS[algorithm]().digest_size:
        raise bad(f"{header}: a {algorithm} checksum has {ALGORITHMS[algorithm]().digest_size} bytes.", header)
    return algorithm, digest


class BodyChecksum:
    """The checksum of one request body, fed as it arrives; ``matches()`` once it has all arrived.

    ``expected`` is ``(algorithm, digest)`` from a header, or a callable that
    returns the trailer's raw value (or None when none arrived) after the body.
    """

    def __init__(self, expected: tuple[str, bytes] | Callable[[], str | None]) -> None:
        self._expected = expected
        names = [expected[0]] if isinstance(expected, tuple) else list(ALGORITHMS)
        self._hashes = {name: ALGORITHMS[name]() for name in names}

    @property
    def from_trailer(self) -> bool:
        return not isinstance(self._expected, tuple)

    def update(self, data) -> None:
        for h in self._hashes.values():
            h.update(data)

    def matches(self) -> bool:
        """True when the body has the checksum; a 400 when a trailer was announced and did not come, or is malformed."""
        expected = self._expected
        if not isinstance(expected, tuple):
            raw = expected()
            if raw is None:
                raise bad("The Upload-Checksum trailer was announced but did not arrive.", "Upload-Checksum")
            expected = parse_checksum(raw)
        algorithm, digest = expected
        return hmac.compare_digest(self._hashes[algorithm].digest(), digest)
