"""The schemas every part of the files API shares: input bases, a file, a page of files, expiry, quota."""

from __future__ import annotations

import math
import re
from datetime import UTC
from typing import cast

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Function, Integer, List, Nested, String
from apiflask.types import ResponsesType
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import EXCLUDE, RAISE, ValidationError, validates_schema

from redfile_common.errors import ApiError
from redfile_common.fields import JsonInteger
from redfile_files.records import FileRecord
from redfile_files.validation import MAX_FOLDER_BYTES, MAX_FOLDER_DEPTH, MAX_MIME_LENGTH, MIME_PATTERN, OWNER_PATTERN, folder_pattern

PAGE_LIMIT_MAX = 200
# The largest byte count a client may declare: exact as a double, so Lua scripts and JSON clients read it right (8 PiB).


MAX_DECLARED_BYTES = 2**53 - 1


PAGE_LIMIT_DEFAULT = 50
MIME_PREFIX_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,126}(?:/[A-Za-z0-9!#$&^_.+-]{0,127})?$"


NAME_RULE = "x-redfile-name"  # replaced in the document by the rules of validate_name (openapi.py)


def mime_type(description: str = "The MIME type; default: the one the name implies.", **options) -> String:
    return String(metadata={"pattern": MIME_PATTERN, "maxLength": MAX_MIME_LENGTH, "description": description}, **options)


def owner(description: str, **options) -> String:
    return String(metadata={"pattern": OWNER_PATTERN, "description": description}, **options)


def folder(description: str = "The folder: an absolute path (`/`, `/projects/2026`); default `/`.", **options) -> String:
    """A folder: checked by the domain (``validate_folder``, a 400 ``invalid_folder``), documented by its rules."""
    rules = f" Each segment is a valid file name; at most {MAX_FOLDER_DEPTH} deep and {MAX_FOLDER_BYTES} bytes in UTF-8."
    return String(metadata={"description": description + rules, "maxLength": MAX_FOLDER_BYTES, "pattern": folder_pattern()}, **options)


def file_name(description: str = "The file's name.", **options) -> String:
    """A file name: checked by the domain (``validate_name``, a 400 ``invalid_name``), documented by its rules."""
    return String(metadata={NAME_RULE: True, "description": description}, **options)


class QueryIn(Schema):
    """Query strings and forms: a field we do not know is ignored (browsers and proxies add their own)."""

    class Meta:
        unknown = EXCLUDE


class JsonIn(Schema):
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
    chunk_size = Integer(metadata={"description": "every chunk but the last has this size; 0 when sizes vary"})
    total_chunks = Integer()
    expires_at = Function(
        lambda f: getattr(f, "expires_at", None) or None,
        metadata={"type": "string", "nullable": True, "description": "ISO 8601 UTC when the file disappears; null: never"},
    )
    encrypted = Boolean(metadata={"description": "stored sealed with AES-256-GCM"})
    folder = String(metadata={"description": "the folder it is in: an absolute path, `/` for the root"})

    def dump(self, obj, *, many=None):
        """A ``FileRecord`` of exactly this schema dumps through ``file_out``: the same dict without marshmallow's
        per-field machinery (marshmallow's dump costs ~6 % of a metadata read's CPU; equal by
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
        "chunk_size": f.chunk_size,
        "total_chunks": f.total_chunks,
        "expires_at": f.expires_at or None,
        "encrypted": bool(f.dek),
        "folder": f.folder,
    }


class FileItem(FileOut):
    """A file in a list (its own class: apispec registers nested schemas itself)."""


_FAST_DUMP = (FileOut, FileItem)  # not their subclasses, which add fields


class FilePage(Schema):
    items = List(Nested(FileItem))
    next_cursor = String(allow_none=True, metadata={"description": "pass as ?cursor= for the next page; null on the last"})


class PageQuery(QueryIn):
    limit = Integer(load_default=PAGE_LIMIT_DEFAULT, validate=Range(1, PAGE_LIMIT_MAX))
    cursor = String(load_default=None, validate=Length(max=200))


class QueryInteger(Integer):
    """An integer in a query string: ASCII digits, or an integral number as JSON Schema counts one (``5.0``)."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, str):
            found = re.fullmatch(r"(-?[0-9]{1,20})(?:\.0+)?", value)
            if not found:
                raise self.make_error("invalid")
            value = found.group(1)
        return super()._deserialize(value, attr, data, **kwargs)


class FileListQuery(PageQuery):
    """GET /files: filters and sorts, each served by an index of the owner's (docs/architecture.md)."""

    cursor = String(load_default=None, validate=Length(max=2000), metadata={"description": "next_cursor of the page before"})
    folder = folder("Only files in this folder (name order unless sort says).", load_default=None)
    recursive = Boolean(load_default=False, metadata={"description": "with folder: its subfolders' files too"})
    q = String(
        load_default=None,
        validate=Length(min=1, max=255),
        metadata={"description": "a case-insensitive (Unicode case-folded) substring of the name; name order unless sort says"},
    )
    sort = String(
        load_default=None,
        validate=OneOf(["name", "size", "created_at"]),
        metadata={"description": "default: name with folder or q, else created_at; folder and q need name"},
    )
    order = String(load_default=None, validate=OneOf(["asc", "desc"]), metadata={"description": "default: asc for name, else desc"})
    min_size = QueryInteger(
        load_default=None, validate=Range(min=0, max=MAX_DECLARED_BYTES), metadata={"description": "bytes, with sort=size"}
    )
    max_size = QueryInteger(
        load_default=None, validate=Range(min=0, max=MAX_DECLARED_BYTES), metadata={"description": "bytes, with sort=size"}
    )
    created_after = DateTime(load_default=None, metadata={"description": "ISO 8601, inclusive; with the creation order"})
    created_before = DateTime(load_default=None, metadata={"description": "ISO 8601, inclusive; with the creation order"})
    type = String(
        load_default=None,
        validate=Regexp(MIME_PREFIX_PATTERN),
        metadata={
            "pattern": MIME_PREFIX_PATTERN,
            "description": "a MIME type or its type alone (`image`, `image/`: any image; `image/png`); with any order",
        },
    )


MAX_EXPIRY_SECONDS = 10 * 366 * 86400


EXPIRES_IN = JsonInteger(
    load_default=None,
    allow_none=True,
    validate=Range(min=1, max=MAX_EXPIRY_SECONDS),
    metadata={"description": "seconds from now after which the file disappears (or give expires_at)"},
)


EXPIRES_AT = DateTime(
    load_default=None, allow_none=True, metadata={"description": "ISO 8601 time at which the file disappears (at most 10 years ahead)"}
)


class ExpiryIn(JsonIn):
    expires_in = EXPIRES_IN
    expires_at = EXPIRES_AT

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


class QuotaOut(Schema):
    username = String()
    quota_bytes = Integer()
    max_file_bytes = Integer()
    used_bytes = Integer(metadata={"description": "files, including ones being completed"})
    reserved_bytes = Integer(metadata={"description": "uploads in progress"})
    available_bytes = Integer()
    quota_is_default = Boolean()
    max_file_is_default = Boolean()


def doc_responses(table: dict[int, str | dict]) -> ResponsesType:
    """A route's documented responses, as apiflask takes them: a string is a description (an error's gets
    the error schema), a dict a whole response object.  apiflask handles a table mixing the two; its type
    names one or the other, hence the cast."""
    return cast(ResponsesType, table)
