"""Request and response schemas of the files service (they also make /files/openapi.json)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Integer, List, Nested, String
from apiflask.validators import Length, Range
from marshmallow import EXCLUDE

PAGE_LIMIT_MAX = 200
PAGE_LIMIT_DEFAULT = 50


class _In(Schema):
    class Meta:
        unknown = EXCLUDE


class FileOut(Schema):
    id = String(metadata={"description": "32 hex characters"})
    name = String()
    size = Integer(metadata={"description": "bytes"})
    owner = String()
    created_at = String(metadata={"description": "ISO 8601 UTC"})
    updated_at = String(metadata={"description": "ISO 8601 UTC"})
    mime_type = String()
    sha256 = String(metadata={"description": "SHA-256 of the whole file, hex"})
    kind = String(metadata={"description": "file or text"})


class TextOut(FileOut):
    content = String()


class FileItem(FileOut):
    """A file in a list (its own class: apispec registers nested schemas itself)."""


class FilePage(Schema):
    items = List(Nested(FileItem))
    next_cursor = String(allow_none=True, metadata={"description": "pass as ?cursor= for the next page; null on the last"})


class PageQuery(_In):
    limit = Integer(load_default=PAGE_LIMIT_DEFAULT, validate=Range(1, PAGE_LIMIT_MAX))
    cursor = String(load_default=None, validate=Length(max=200))


class InternalPageQuery(PageQuery):
    owner = String(load_default=None, validate=Length(min=1, max=200), metadata={"description": "omit for every file"})


class ChunkJsonIn(Schema):
    """The JSON form of POST /upload_chunk (the multipart and raw forms carry the same fields)."""

    file_id = String(metadata={"description": "omit on the first chunk of a new upload"})
    chunk_index = Integer(required=True, validate=Range(min=0))
    total_chunks = Integer(required=True, validate=Range(min=1))
    chunk_data = String(required=True, metadata={"description": "the chunk's bytes, base64"})
    sha256 = String(metadata={"description": "optional SHA-256 of the chunk, hex; verified"})


class ChunkOut(Schema):
    file_id = String()
    chunk_index = Integer()
    total_chunks = Integer()
    received_chunks = Integer()
    received_bytes = Integer()


class CompleteIn(_In):
    file_id = String(required=True)
    name = String(required=True)
    mime_type = String(load_default=None, allow_none=True)
    total_size = Integer(required=True, strict=True, validate=Range(min=0))


class FileJsonIn(_In):
    """The JSON form of POST /files."""

    name = String(required=True)
    mime_type = String(load_default=None, allow_none=True)
    data = String(required=True, metadata={"description": "the file's bytes, base64"})


class RenameIn(_In):
    new_name = String(required=True)


class TextIn(_In):
    content = String(required=True)
    name = String(load_default=None, allow_none=True)


class DeletedOut(Schema):
    deleted = Integer()
