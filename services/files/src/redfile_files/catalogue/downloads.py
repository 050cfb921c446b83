"""Download responses: conditional requests, one byte range, safe headers, a verified stream.

* ``ETag`` is the file's SHA-256 when it has one, else its composite (strong: a file's
  bytes never change); ``If-None-Match`` gives 304.
* ``Range: bytes=a-b`` (one range; a suffix ``-n`` or an open ``a-`` too) gives
  206 with ``Content-Range``; a range that starts past the end gives 416 with
  ``Content-Range: bytes */<size>``; several ranges, other units or a
  malformed header are ignored (200, the whole file), as RFC 9110 allows.
  ``If-Range`` with an ETag other than the file's (or with a date) also
  gives the whole file.
* User content is never rendered as the service's own: ``nosniff``,
  ``Content-Security-Policy: sandbox``, and ``attachment`` unless the type is
  on a short list of types browsers only display (images, plain text, audio,
  video).  The name goes in an ASCII ``filename`` and an RFC 5987 ``filename*``.
* The checksums go along: ``Repr-Digest`` (RFC 9530, the whole file's
  SHA-256), ``X-Checksum-SHA256``, ``X-Checksum-CRC32C`` and
  ``X-Checksum-Composite`` (S3-style).
* The body is streamed chunk by chunk and each chunk is verified before a
  byte of it is sent.  The first chunk is read before the headers go, so a
  missing or corrupt one is a clean JSON error; a later one can only cut the
  stream: the connection is closed short of ``Content-Length`` and the client
  sees an incomplete body, never wrong bytes.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import quote

import structlog
from flask import Request, Response

from redfile_common.errors import ApiError
from redfile_files.catalogue.reader import FileGone
from redfile_files.checksums import sha256_b64
from redfile_files.crypto import ChunkCorrupt
from redfile_files.records import FileRecord
from redfile_files.storage.records import ChunkMissing

log = structlog.get_logger("redfile.files")

# RFC 5987 attr-char, less the ALPHA/DIGIT that quote() keeps anyway.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"
# Types a browser displays but never runs; everything else is an attachment.
INLINE_TYPES = frozenset(
    {"text/plain", "image/png", "image/jpeg", "image/gif", "image/webp", "audio/mpeg", "audio/ogg", "video/mp4", "video/webm"}
)


def ascii_filename(name: str) -> str:
    """A quoted-string-safe ASCII stand-in for ``name`` (accents dropped, the rest replaced by '_')."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    safe = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%' else "_" for ch in folded).strip()
    return safe or "download"


def content_disposition(name: str, disposition: str = "attachment") -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the exact name as RFC 5987 ``filename*``."""
    return f"{disposition}; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHAR_SAFE)}"


def disposition_for(mime_type: str) -> str:
    base = mime_type.split(";", 1)[0].strip().lower()
    return "inline" if base in INLINE_TYPES else "attachment"


def byte_range(request: Request, record: FileRecord) -> tuple[int, int] | None:
    """The one range to send as (start, end) exclusive; None for the whole file; a 416 when unsatisfiable."""
    rng = request.range
    if rng is None or rng.units != "bytes" or len(rng.ranges) != 1:
        return None
    if request.if_range.date is not None:
        return None  # a date is never strong enough for a file's bytes: the whole file
    if request.if_range.etag is not None and request.if_range.etag != record.etag:
        return None
    start, stop = rng.ranges[0]
    size = record.size
    if start < 0:  # a suffix: the last -start bytes
        if size == 0:
            raise unsatisfiable(record)
        return max(0, size + start), size
    if start >= size:
        raise unsatisfiable(record)
    return start, size if stop is None else min(stop, size)


def _guarded(first: bytes, rest: Iterator[bytes], file_id: str) -> Iterator[bytes]:
    try:
        if first:
            yield first
        yield from rest
    except (ChunkMissing, ChunkCorrupt) as exc:
        # Headers are gone already: cut the body short (Content-Length tells the client), never send bad bytes.
        if isinstance(exc, FileGone):  # deleted while it was being sent: not damage
            log.info("download_aborted", file_id=file_id, chunk_index=exc.index, reason="file_deleted")
        else:
            log.error("download_aborted", file_id=file_id, chunk_index=exc.index, reason=type(exc).__name__)
        raise
    finally:
        close = getattr(rest, "close", None)
        if close:
            close()


def prime(chunks: Iterable[bytes], file_id: str) -> tuple[bytes, Iterator[bytes]]:
    """Read the first piece before any header is sent, so its failure is a clean error."""
    it = iter(chunks)
    try:
        first = next(it, b"")
    except FileGone:  # deleted between reading its record and its first chunk
        raise ApiError("file_not_found") from None
    except ChunkMissing as exc:
        log.error("download_chunk_missing", file_id=file_id, chunk_index=exc.index)
        raise ApiError("stored_data_corrupt", "A chunk of this file is missing.", details={"chunk_index": exc.index}) from None
    except ChunkCorrupt as exc:
        log.error("download_chunk_corrupt", file_id=file_id, chunk_index=exc.index)
        raise ApiError("stored_data_corrupt", details={"chunk_index": exc.index}) from None
    return first, it


def _headers(response: Response, record: FileRecord) -> Response:
    response.headers["Accept-Ranges"] = "bytes"
    response.headers["Content-Disposition"] = content_disposition(record.name, disposition_for(record.mime_type))
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Content-Security-Policy"] = "sandbox"
    response.headers["Cross-Origin-Resource-Policy"] = "same-origin"
    response.headers["Cache-Control"] = "private, no-cache"
    response.set_etag(record.etag)
    if record.sha256:
        response.headers["Repr-Digest"] = f"sha-256=:{sha256_b64(record.sha256)}:"
        response.headers["X-Checksum-SHA256"] = record.sha256
    if record.crc32c:
        response.headers["X-Checksum-CRC32C"] = record.crc32c
    if record.composite_blake3:
        response.headers["X-Checksum-Composite"] = record.composite_blake3
    if record.expires_at:
        response.headers["X-Expires-At"] = record.expires_at
    return response


def download_response(record: FileRecord, chunks: Iterable[bytes] | None, span: tuple[int, int] | None = None) -> Response:
    """200 (or 206 for ``span``) with the safe headers; ``chunks`` None is a HEAD (no body is read)."""
    start, end = span if span is not None else (0, record.size)
    if chunks is None:
        body: Iterable[bytes] = ()
    else:
        first, rest = prime(chunks, record.id)
        body = _guarded(first, rest, record.id)
    response = Response(
        body, status=206 if span is not None else 200, mimetype=None, content_type=record.mime_type, direct_passthrough=True
    )
    response.headers["Content-Length"] = str(end - start)
    if span is not None:
        response.headers["Content-Range"] = f"bytes {start}-{end - 1}/{record.size}"
    return _headers(response, record)


def serve(
    request: Request,
    record: FileRecord,
    read: Callable[[int, int], Iterable[bytes]],
    *,
    on_body: Callable[[tuple[int, int] | None], object] | None = None,
) -> Response:
    """A file as every download route serves it: 304 on a matching ETag, one Range, HEAD without a body.

    ``read(start, end)`` gives the bytes; ``on_body(span)`` runs before a body is produced with the range
    sent (start, end exclusive), or None for the whole file (a share link counts its download there)."""
    if request.if_none_match.contains_weak(record.etag):
        return not_modified(record)
    span = byte_range(request, record)
    start, end = span if span is not None else (0, record.size)
    if request.method == "HEAD":
        return download_response(record, None, span)
    if on_body is not None:
        on_body(span)
    return download_response(record, read(start, end), span)


def not_modified(record: FileRecord) -> Response:
    response = Response(status=304)
    response.set_etag(record.etag)
    response.headers["Cache-Control"] = "private, no-cache"
    return response


def unsatisfiable(record: FileRecord) -> ApiError:
    return ApiError(
        "range_not_satisfiable",
        details={"size": record.size},
        headers={"Content-Range": f"bytes */{record.size}", "Accept-Ranges": "bytes"},
    )


__all__ = ["ascii_filename", "byte_range", "content_disposition", "download_response", "not_modified", "unsatisfiable"]
