"""Download responses: streamed chunk by chunk, with headers that are safe for any stored name."""

from __future__ import annotations

import unicodedata
from typing import Iterable, Iterator
from urllib.parse import quote

import structlog
from flask import Response

from .domain import FileRecord
from .storage import ChunkMissing

log = structlog.get_logger("redfile.files")

# RFC 5987 attr-char, less the ALPHA/DIGIT that quote() keeps anyway.
_ATTR_CHAR_SAFE = "!#$&+-.^_`|~"


def ascii_filename(name: str) -> str:
    """A quoted-string-safe ASCII stand-in for ``name`` (accents dropped, the rest replaced by '_')."""
    folded = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    safe = "".join(ch if 0x20 <= ord(ch) < 0x7F and ch not in '"\\%' else "_" for ch in folded).strip()
    return safe or "download"


def content_disposition(name: str) -> str:
    """``attachment`` with an ASCII ``filename`` for old clients and the exact name as RFC 5987 ``filename*``."""
    return f"attachment; filename=\"{ascii_filename(name)}\"; filename*=UTF-8''{quote(name, safe=_ATTR_CHAR_SAFE)}"


def _guarded(chunks: Iterable[bytes], file_id: str) -> Iterator[bytes]:
    try:
        yield from chunks
    except ChunkMissing as exc:
        # Headers are gone already; all we can do is cut the body short (Content-Length tells the client).
        log.warning("download_truncated", file_id=file_id, chunk_index=exc.index)
        raise


def download_response(record: FileRecord, chunks: Iterable[bytes]) -> Response:
    response = Response(_guarded(chunks, record.id), mimetype=None, content_type=record.mime_type, direct_passthrough=True)
    response.headers["Content-Length"] = str(record.size)
    response.headers["Content-Disposition"] = content_disposition(record.name)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-cache"
    response.set_etag(record.sha256)
    return response


def not_modified(record: FileRecord) -> Response:
    response = Response(status=304)
    response.set_etag(record.sha256)
    response.headers["Cache-Control"] = "private, no-cache"
    return response
