"""Reading request bodies that carry bytes: the three chunk forms and one-request uploads.

``POST /upload_chunk`` takes its chunk as a multipart file part ``chunk_data``
(or, in a multipart or urlencoded form, a base64 text field), as base64 in a
JSON body, or as a raw ``application/octet-stream`` body with the other fields
in the query string.  apiflask's ``@input`` cannot express "one of three
bodies", so the parsing is here, with the same error shape as its validation:
``validation_error`` with ``details = {location: {field: [messages]}}``.

(``PUT /uploads/<id>/chunks/<index>`` takes the chunk as the raw body: see
``intake``, which streams it into Redis as it arrives.)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial
from typing import Any

from flask import Request
from marshmallow import ValidationError

from redfile_common.errors import ApiError
from redfile_files.records import FileUpload
from redfile_files.uploads.schemas import ChunkFieldsIn, FileFormIn
from redfile_files.uploads.service import LARGE_FILES_HINT
from redfile_files.validation import decode_base64, lenient_mime_type

FORM_TYPES = ("multipart/form-data", "application/x-www-form-urlencoded")
CHUNK_FIELDS = frozenset({"file_id", "chunk_index", "total_chunks", "sha256"})


@dataclass(frozen=True)
class ChunkRequest:
    file_id: str | None
    chunk_index: int
    total_chunks: int
    data: bytes
    sha256: str | None


def _invalid(location: str, errors: dict | list | str) -> ApiError:
    """marshmallow's messages: a field's list of strings, per field (a whole-schema error is a list)."""
    table = errors if isinstance(errors, dict) else {"_schema": errors if isinstance(errors, list) else [errors]}
    summary = "; ".join(f"{k}: {' '.join(map(str, v))}" for k, v in table.items())
    return ApiError("validation_error", f"The request is not valid: {summary}", details={location: errors})


def _too_large(limit: int, what: str = "chunk") -> ApiError:
    if what == "file":  # a one-request upload's file
        message = f"The file is over the {limit:,} bytes of a one-request upload. {LARGE_FILES_HINT}"
        return ApiError("payload_too_large", message, details={"max_single_upload_bytes": limit})
    return ApiError("payload_too_large", f"The {what} is over the {limit:,} bytes it may have.", details={f"max_{what}_bytes": limit})


def _base64_field(value: Any, limit: int, what: str) -> bytes:
    # MAX_CONTENT_LENGTH already bounds the encoded text, so decoding first costs little.
    data = decode_base64(value)
    if len(data) > limit:
        raise _too_large(limit, what)
    return data


def _read_part(part, limit: int, what: str) -> bytes:
    data = part.stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit, what)
    return data


def _chunk_fields(fields: Mapping[str, Any], location: str, *, max_chunks: int) -> tuple[str | None, int, int, str | None]:
    wanted = {k: fields[k] for k in ("file_id", "chunk_index", "total_chunks", "sha256") if k in fields}
    for optional in ("file_id", "sha256"):
        if wanted.get(optional) == "":
            del wanted[optional]
    try:
        loaded = ChunkFieldsIn().load(wanted)
    except ValidationError as exc:
        raise _invalid(location, exc.messages) from None
    if loaded["total_chunks"] > max_chunks:
        raise _invalid(location, {"total_chunks": [f"Must be between 1 and {max_chunks}."]})
    sha = loaded.get("sha256")
    return loaded.get("file_id"), loaded["chunk_index"], loaded["total_chunks"], sha.lower() if sha else None


def _chunk_source(request: Request, limit: int) -> tuple[str, Mapping[str, Any], Callable[[], bytes] | None]:
    """Where the fields are, and how to read the chunk (None: no chunk was sent)."""
    if request.mimetype in FORM_TYPES:
        part = request.files.get("chunk_data")
        if part is not None:
            return "form", request.form, partial(_read_part, part, limit, "chunk")
        if "chunk_data" in request.form:
            return "form", request.form, partial(_base64_field, request.form["chunk_data"], limit, "chunk")
        return "form", request.form, None
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError("invalid_json", "The request body must be a JSON object.")
        if body.get("chunk_data") is None:
            return "json", body, None
        return "json", body, partial(_base64_field, body["chunk_data"], limit, "chunk")
    if request.mimetype == "application/octet-stream":
        return "query", request.args, partial(request.get_data, cache=False)
    raise ApiError(
        "unsupported_media_type", "Send the chunk as multipart/form-data, application/json (base64) or application/octet-stream."
    )


def read_chunk_request(request: Request, *, max_chunk_bytes: int, max_chunks: int) -> ChunkRequest:
    """The chunk and its fields, whichever of the three forms the client used.

    The query string holds the fields only with a raw body: with a JSON or form body, a field
    there too is refused, so a body and a query string that disagree never silently pick a winner.
    """
    location, fields, read = _chunk_source(request, max_chunk_bytes)
    if location != "query" and (both := sorted(CHUNK_FIELDS & set(request.args))):
        raise _invalid("query", {name: [f"Only with an application/octet-stream body: send it in the {location} body."] for name in both})
    file_id, index, total, sha = _chunk_fields(fields, location, max_chunks=max_chunks)
    if read is None:
        raise _invalid(location, {"chunk_data": ["Missing data for required field."]})
    data = read()
    if len(data) > max_chunk_bytes:
        raise _too_large(max_chunk_bytes)
    return ChunkRequest(file_id=file_id, chunk_index=index, total_chunks=total, data=data, sha256=sha)


def read_file_upload(request: Request, json_schema, *, max_bytes: int) -> FileUpload:
    """``POST /files``: a multipart part ``file`` (+ ``name``, ``mime_type``) or JSON ``{name, mime_type?, data}``."""
    if request.mimetype in FORM_TYPES:
        part = request.files.get("file")
        if part is None:
            raise _invalid("files", {"file": ["Missing data for required field."]})
        try:
            form = FileFormIn().load(request.form.to_dict())
        except ValidationError as exc:
            raise _invalid("form", exc.messages) from None
        name = form["name"] or part.filename
        if not name:
            raise _invalid("form", {"name": ["Missing data for required field (or a filename on the part)."]})
        # An explicit mime_type field is validated; the part's own Content-Type is only a hint.
        mime_type = form["mime_type"] or lenient_mime_type(part.mimetype, name)
        return FileUpload(data=_read_part(part, max_bytes, "file"), name=name, mime_type=mime_type, folder=form["folder"])
    if request.is_json:
        body = request.get_json(silent=True)
        if not isinstance(body, dict):
            raise ApiError("invalid_json", "The request body must be a JSON object.")
        try:
            loaded = json_schema.load(body)
        except ValidationError as exc:
            raise _invalid("json", exc.messages) from None
        data = _base64_field(loaded["data"], max_bytes, "file")
        return FileUpload(data=data, name=loaded["name"], mime_type=loaded.get("mime_type"), folder=loaded.get("folder"))
    raise ApiError("unsupported_media_type", "Send the file as multipart/form-data or application/json (base64).")
