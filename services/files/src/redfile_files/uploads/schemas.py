"""Schemas of the upload routes (sessions, the seed's chunks, one-request file bodies)."""

from __future__ import annotations

import math
import re

from apiflask import Schema
from apiflask.fields import Boolean, Integer, List, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import EXCLUDE, ValidationError, validates_schema

from redfile_common.fields import JsonInteger
from redfile_files.schemas import MAX_DECLARED_BYTES, ExpiryIn, JsonIn, QueryIn, file_name, folder, mime_type
from redfile_files.validation import SHA256_PATTERN


class WholeNumber(Integer):
    """An integer, from JSON (``3`` or ``3.0``, as JSON Schema counts them) or from a form/query string; never a bool or a fraction."""

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
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


class CompleteIn(ExpiryIn):
    file_id = String(required=True)
    name = file_name(required=True)
    mime_type = mime_type(load_default=None, allow_none=True)
    total_size = JsonInteger(required=True, validate=Range(min=0, max=MAX_DECLARED_BYTES))
    folder = folder(load_default=None, allow_none=True)


class UploadIn(ExpiryIn):
    """POST /uploads: what the file will be, declared up front."""

    name = file_name(required=True)
    total_size = JsonInteger(
        required=True, validate=Range(min=0, max=MAX_DECLARED_BYTES), metadata={"description": "bytes; reserved against your quota now"}
    )
    mime_type = mime_type(load_default=None, allow_none=True)
    chunk_size = JsonInteger(
        load_default=None,
        allow_none=True,
        validate=Range(min=1),
        metadata={"description": "bytes per chunk (the last one the rest); default: the server's"},
    )
    sha256 = String(
        load_default=None,
        allow_none=True,
        metadata={"pattern": SHA256_PATTERN, "description": "SHA-256 of the whole file, hex; verified at completion"},
    )
    checksum_algorithm = String(
        load_default=None,
        allow_none=True,
        validate=OneOf(["sha256"]),
        metadata={"description": "sha256: compute the file's SHA-256 without declaring it (implied by sha256)"},
    )
    folder = folder(load_default=None, allow_none=True)


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
    folder = String(metadata={"description": "the folder the file will be in"})


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


class FileFormIn(QueryIn):
    """The form fields of a multipart POST /files (the bytes come in the part ``file``)."""

    name = file_name("Default: the part's filename.", load_default=None, allow_none=True)
    mime_type = mime_type("Default: the part's Content-Type, else the type the name implies.", load_default=None, allow_none=True)
    folder = folder(load_default=None, allow_none=True)


class FileJsonIn(JsonIn):
    """The JSON form of POST /files."""

    name = file_name(required=True)
    mime_type = mime_type(load_default=None, allow_none=True)
    folder = folder(load_default=None, allow_none=True)
    data = String(required=True, metadata={"description": "the file's bytes, base64", "format": "byte"})
