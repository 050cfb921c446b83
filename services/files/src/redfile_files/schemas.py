"""Request and response schemas of the files service (they also make /files/openapi.json)."""

from __future__ import annotations

import math
import re
from datetime import UTC

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Function, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import EXCLUDE, RAISE, ValidationError, validates_schema

from redfile_common.errors import ApiError
from redfile_files.records import FileRecord

PAGE_LIMIT_MAX = 200
# The largest byte count a client may declare: exact as a double, so Lua scripts and JSON clients read it right (8 PiB).
MAX_DECLARED_BYTES = 2**53 - 1
PAGE_LIMIT_DEFAULT = 50


class _In(Schema):
    """Query strings and forms: a field we do not know is ignored (browsers and proxies add their own)."""

    class Meta:
        unknown = EXCLUDE


class _JsonIn(Schema):
    """JSON bodies: a field we do not know is a 422, so nothing a client did not mean is half-understood."""

    class Meta:
        unknown = RAISE


class FileOut(Schema):
    id = String(metadata={"description": "32 hex characters"})
    name = String()
    size = Integer(metadata={"description": "bytes"})
    owner = String()
    created_at = String(metadata={"description": "ISO 8601 UTC"})
    updated_at = String(metadata={"description": "ISO 8601 UTC"})
    mime_type = String()
    sha256 = Function(
        lambda f: getattr(f, "sha256", None) or None,
        metadata={
            "type": "string",
            "nullable": True,
            "description": (
                "SHA-256 of the whole file, hex, when its upload declared or asked for it (always for one-request files and texts); "
                "else null"
            ),
        },
    )
    kind = String(metadata={"description": "file or text"})
    crc32c = String(metadata={"description": "CRC32C of the whole file, 8 hex digits"})
    composite_blake3 = Function(
        lambda f: getattr(f, "composite_blake3", None) or None,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "BLAKE3 of the chunks' concatenated BLAKE3 digests, hex, then -<number of chunks>",
        },
    )
    composite_sha256 = Function(
        lambda f: getattr(f, "composite_sha256", None) or None,
        metadata={
            "type": "string",
            "nullable": True,
            "description": "files stored before BLAKE3: SHA-256 of the chunks' concatenated SHA-256 digests, hex, then -<number of chunks>",
        },
    )
    chunk_size = Integer(metadata={"description": "every chunk but the last has this size; 0 when sizes vary"})
    total_chunks = Integer()
    expires_at = Function(
        lambda f: getattr(f, "expires_at", None) or None,
        metadata={"type": "string", "nullable": True, "description": "ISO 8601 UTC when the file disappears; null: never"},
    )
    encrypted = Boolean(metadata={"description": "stored sealed with AES-256-GCM"})

    def dump(self, obj, *, many=None):
        """A ``FileRecord`` of exactly this schema dumps through ``file_out``: the same dict without marshmallow's
        per-field machinery (marshmallow's dump was ~6 % of a metadata read's CPU, issue 8; equal by
        ``tests/unit/files/test_schemas.py``)."""
        if (
            type(self) in _FAST_DUMP
            and not (self.many if many is None else many)
            and isinstance(obj, FileRecord)
            and self.only is None
            and not self.exclude
            and not self.load_only
        ):
            return file_out(obj)
        return super().dump(obj, many=many)


def file_out(f: FileRecord) -> dict:
    """``FileOut``'s dump of a ``FileRecord``, field by field in the schema's order."""
    return {
        "id": f.id,
        "name": f.name,
        "size": f.size,
        "owner": f.owner,
        "created_at": f.created_at,
        "updated_at": f.updated_at,
        "mime_type": f.mime_type,
        "sha256": f.sha256 or None,
        "kind": f.kind,
        "crc32c": f.crc32c,
        "composite_blake3": f.composite_blake3 or None,
        "composite_sha256": f.composite_sha256 or None,
        "chunk_size": f.chunk_size,
        "total_chunks": f.total_chunks,
        "expires_at": f.expires_at or None,
        "encrypted": bool(f.dek),
    }


class TextOut(FileOut):
    content = String()


class FileItem(FileOut):
    """A file in a list (its own class: apispec registers nested schemas itself)."""


_FAST_DUMP = (FileOut, FileItem)  # not their subclasses, which add fields


class FilePage(Schema):
    items = List(Nested(FileItem))
    next_cursor = String(allow_none=True, metadata={"description": "pass as ?cursor= for the next page; null on the last"})


class PageQuery(_In):
    limit = Integer(load_default=PAGE_LIMIT_DEFAULT, validate=Range(1, PAGE_LIMIT_MAX))
    cursor = String(load_default=None, validate=Length(max=200))


class InternalPageQuery(PageQuery):
    owner = String(load_default=None, validate=Length(min=1, max=200), metadata={"description": "omit for every file"})


class WholeNumber(Integer):
    """An integer, from JSON or from a form/query string; never a bool or a fraction."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, (bool, float)):
            raise self.make_error("invalid")
        # int() also reads " 1 ", "1_0", "+1" and non-ASCII digits ("１", "٣"): a form or query value is ASCII digits only
        if isinstance(value, str) and not re.fullmatch(r"-?[0-9]{1,20}", value):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)


class ChunkFieldsIn(Schema):
    """The fields of POST /upload_chunk: JSON body, multipart form, or query string (raw body).

    Validates every form of the request and generates its OpenAPI document
    (``openapi.py``); only the chunk's bytes are read by hand (``bodies.py``).
    """

    class Meta:
        unknown = EXCLUDE

    file_id = String(allow_none=True, validate=Length(max=64), metadata={"description": "omit on the first chunk; a new upload is created"})
    chunk_index = WholeNumber(required=True, validate=Range(min=0), metadata={"description": "0-based, less than total_chunks"})
    total_chunks = WholeNumber(required=True, validate=Range(min=1), metadata={"description": "at most MAX_CHUNKS"})
    sha256 = String(validate=Regexp(r"^[0-9A-Fa-f]{64}$"), metadata={"description": "optional SHA-256 of the chunk, hex; verified"})

    @validates_schema
    def _index_in_range(self, data, **kwargs):
        index, total = data.get("chunk_index"), data.get("total_chunks")
        if index is not None and total is not None and index >= total:
            raise ValidationError("Must be less than total_chunks.", field_name="chunk_index")


class ChunkOut(Schema):
    file_id = String()
    chunk_index = Integer()
    total_chunks = Integer()
    received_chunks = Integer()
    received_bytes = Integer()


MAX_EXPIRY_SECONDS = 10 * 366 * 86400
_EXPIRES_IN = Integer(
    load_default=None,
    allow_none=True,
    strict=True,
    validate=Range(min=1, max=MAX_EXPIRY_SECONDS),
    metadata={"description": "seconds from now after which the file disappears (or give expires_at)"},
)
_EXPIRES_AT = DateTime(
    load_default=None, allow_none=True, metadata={"description": "ISO 8601 time at which the file disappears (at most 10 years ahead)"}
)


class _Expiry(_JsonIn):
    expires_in = _EXPIRES_IN
    expires_at = _EXPIRES_AT

    @validates_schema
    def _one_expiry(self, data, **kwargs):
        if data.get("expires_in") is not None and data.get("expires_at") is not None:
            raise ValidationError("Give expires_in or expires_at, not both.", field_name="expires_at")


def expiry_ts(data: dict, now: float) -> int | None:
    """The file expiry of an input with ``expires_in`` / ``expires_at`` as unix seconds, or None.

    ``expires_in`` rounds up: whole-second deadlines never give less than the seconds asked for."""
    if data.get("expires_in") is not None:
        return math.ceil(now) + data["expires_in"]
    at = data.get("expires_at")
    if at is None:
        return None
    if at.tzinfo is None:
        at = at.replace(tzinfo=UTC)
    try:
        ts = int(at.astimezone(UTC).timestamp())
    except (OverflowError, ValueError, OSError):  # 0001-01-01T00:00+01:00, 9999-12-31T23:59-01:00: no UTC time
        ts = None
    if ts is None or ts > now + MAX_EXPIRY_SECONDS:
        raise ApiError(
            "validation_error",
            "expires_at must be at most 10 years ahead.",
            details={"json": {"expires_at": ["Must be at most 10 years ahead."]}},
        )
    return ts


class CompleteIn(_Expiry):
    file_id = String(required=True)
    name = String(required=True)
    mime_type = String(load_default=None, allow_none=True)
    total_size = Integer(required=True, strict=True, validate=Range(min=0, max=MAX_DECLARED_BYTES))


class UploadIn(_Expiry):
    """POST /uploads: what the file will be, declared up front."""

    name = String(required=True)
    total_size = Integer(
        required=True,
        strict=True,
        validate=Range(min=0, max=MAX_DECLARED_BYTES),
        metadata={"description": "bytes; reserved against your quota now"},
    )
    mime_type = String(load_default=None, allow_none=True)
    chunk_size = Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=Range(min=1),
        metadata={"description": "bytes per chunk (the last one the rest); default: the server's"},
    )
    sha256 = String(load_default=None, allow_none=True, metadata={"description": "SHA-256 of the whole file, hex; verified at completion"})
    checksum_algorithm = String(
        load_default=None,
        allow_none=True,
        validate=OneOf(["sha256"]),
        metadata={"description": "sha256: compute the file's SHA-256 without declaring it (implied by sha256)"},
    )


class UploadOut(Schema):
    id = String(metadata={"description": "the upload's id; the file keeps it"})
    name = String()
    mime_type = String()
    total_size = Integer(allow_none=True, metadata={"description": "null for a seed upload (/upload_chunk)"})
    chunk_size = Integer(allow_none=True)
    total_chunks = Integer()
    received_chunks = Integer()
    received_bytes = Integer()
    missing = List(Integer(), metadata={"description": "the first 100 missing chunk indices"})
    missing_count = Integer()
    expires_at = String(metadata={"description": "ISO 8601 UTC: the upload is gone after this unless a chunk arrives"})
    created_at = String()
    updated_at = String()
    sha256 = String(allow_none=True, metadata={"description": "the declared SHA-256 of the whole file"})
    checksum_algorithm = String(allow_none=True, metadata={"description": "sha256 when the file's SHA-256 will be computed"})
    file_expires_at = String(allow_none=True, metadata={"description": "when the completed file will disappear"})
    encrypted = Boolean()


class ChunkPutOut(Schema):
    upload_id = String()
    chunk_index = Integer()
    size = Integer()
    sha256 = String(allow_none=True, metadata={"description": "of the chunk, hex, when the client sent one to verify; else null"})
    crc32c = String(metadata={"description": "of the chunk, 8 hex digits"})
    blake3 = String(metadata={"description": "of the chunk, hex"})
    stored = Boolean(metadata={"description": "false: the same bytes were already stored"})
    received_chunks = Integer()
    received_bytes = Integer()


class QuotaOut(Schema):
    username = String()
    quota_bytes = Integer()
    max_file_bytes = Integer()
    used_bytes = Integer(metadata={"description": "files, including ones being completed"})
    reserved_bytes = Integer(metadata={"description": "uploads in progress"})
    available_bytes = Integer()
    quota_is_default = Boolean()
    max_file_is_default = Boolean()


class QuotaIn(_JsonIn):
    quota_bytes = Integer(
        required=True,
        allow_none=True,
        strict=True,
        validate=Range(min=0, max=MAX_DECLARED_BYTES),
        metadata={"description": "bytes the user may hold; null: the service default"},
    )
    max_file_bytes = Integer(
        load_default=None,
        allow_none=True,
        strict=True,
        validate=Range(min=1, max=MAX_DECLARED_BYTES),
        metadata={"description": "the user's largest file; null: the service default"},
    )


class FileFormIn(_In):
    """The form fields of a multipart POST /files (the bytes come in the part ``file``)."""

    name = String(load_default=None, allow_none=True, metadata={"description": "default: the part's filename"})
    mime_type = String(load_default=None, allow_none=True, metadata={"description": "default: the part's Content-Type"})


class FileJsonIn(_JsonIn):
    """The JSON form of POST /files."""

    name = String(required=True)
    mime_type = String(load_default=None, allow_none=True)
    data = String(required=True, metadata={"description": "the file's bytes, base64", "format": "byte"})


class RenameIn(_JsonIn):
    new_name = String(required=True)


class TextIn(_JsonIn):
    content = String(required=True)
    name = String(load_default=None, allow_none=True)


class DeletedOut(Schema):
    deleted = Integer()


class StatsQuery(_In):
    owner = String(load_default=None, validate=Length(min=1, max=128), metadata={"description": "one user's counts; omit for everyone's"})


class StatsOut(Schema):
    files = Integer(required=True, metadata={"description": "stored files and texts"})
    bytes_stored = Integer(required=True, metadata={"description": "the sum of their sizes"})
    active_uploads = Integer(required=True, metadata={"description": "chunked uploads in progress (not completed, aborted or expired)"})
