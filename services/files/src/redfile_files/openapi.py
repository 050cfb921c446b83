"""The request bodies apiflask's ``@input`` cannot describe: one operation, several content types.

``POST /upload_chunk`` and ``POST /files`` take their fields in several forms
(JSON, multipart, query); ``bodies.py`` validates every form with the
marshmallow schemas in ``schemas.py`` and reads only the bytes by hand.  This
spec processor documents each form from those same schemas, adding the
byte-carrying field.
"""

from __future__ import annotations

from apispec import APISpec
from apispec.ext.marshmallow.openapi import OpenAPIConverter

from redfile_files.checksums import CRC32C_HEADER_PATTERN, SHA256_HEADER_PATTERN
from redfile_files.schemas import NAME_RULE
from redfile_files.tus.openapi import document_tus
from redfile_files.uploads.schemas import ChunkFieldsIn, FileFormIn, FileJsonIn
from redfile_files.validation import OWNER_PATTERN, name_pattern

OR_EMPTY = "or-empty"  # a form's file name: empty is none
_BINARY = {"type": "string", "format": "binary"}
_STR = {"type": "string"}


def _converter() -> OpenAPIConverter:
    spec = APISpec(title="redfile-files bodies", version="1", openapi_version="3.1.0")  # holds nothing: every schema is inlined
    return OpenAPIConverter(openapi_version="3.1.0", schema_name_resolver=lambda schema: None, spec=spec)


def _form(schema: dict) -> dict:
    """A form field is text: it has no null (a nullable field of the JSON form is simply left out), and an
    empty one is as good as none (an empty name: the part's filename)."""
    out = {}
    for name, prop in schema["properties"].items():
        kind = prop.get("type")
        out[name] = {**prop, "type": next(t for t in kind if t != "null")} if isinstance(kind, list) and "null" in kind else prop
        if out[name].get(NAME_RULE):
            out[name][NAME_RULE] = OR_EMPTY
    return {**schema, "properties": out}


def _with(schema: dict, **extra_properties) -> dict:
    """A schema generated from marshmallow, plus the byte-carrying field(s) read by hand."""
    out = {**schema, "properties": {**schema["properties"], **extra_properties}}
    out["required"] = sorted({*schema.get("required", []), *extra_properties})
    return out


def chunk_body() -> dict:
    fields = _converter().schema2jsonschema(ChunkFieldsIn)
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": _with(fields, chunk_data={**_BINARY, "description": "the chunk (a file part; a text field is read as base64)"})
            },
            "application/json": {"schema": _with(fields, chunk_data={**_STR, "format": "byte", "description": "the chunk, base64"})},
            "application/octet-stream": {"schema": {**_BINARY, "description": "the chunk; the other fields go in the query string"}},
        },
    }


def chunk_query() -> list[dict]:
    params = _converter().schema2parameters(ChunkFieldsIn, location="query")
    for param in params:
        param["required"] = False  # required only with an application/octet-stream body
        param["description"] = (
            f"{param.get('description', '')} (query form: only with an application/octet-stream body; "
            "with a JSON or form body, a field here is refused with a 422)"
        ).strip()
    return params


def file_body() -> dict:
    converter = _converter()
    return {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": _with(
                    _form(converter.schema2jsonschema(FileFormIn)),
                    file={**_BINARY, "description": "the file; its filename is the default name"},
                )
            },
            "application/json": {"schema": converter.schema2jsonschema(FileJsonIn)},
        },
    }


CHUNK_PUT_BODY = {
    "required": True,
    "content": {"application/octet-stream": {"schema": {**_BINARY, "description": "the chunk's bytes (any Content-Type is read raw)"}}},
}
CHUNK_PUT_HEADERS = [
    {
        "in": "header",
        "name": "X-Checksum-SHA256",
        "required": False,
        "schema": {**_STR, "pattern": SHA256_HEADER_PATTERN},
        "description": "the chunk's SHA-256, hex or base64; a mismatch is a 400 and nothing is stored",
    },
    {
        "in": "header",
        "name": "X-Checksum-CRC32C",
        "required": False,
        "schema": {**_STR, "pattern": CRC32C_HEADER_PATTERN},
        "description": "the chunk's CRC32C, 8 hex digits or base64 of 4 big-endian bytes; verified",
    },
]
RANGE_HEADERS = [
    {"in": "header", "name": "Range", "required": False, "schema": _STR, "description": "one range: bytes=a-b, bytes=a- or bytes=-n"},
    {"in": "header", "name": "If-Range", "required": False, "schema": _STR, "description": "the ETag the range is for"},
    {"in": "header", "name": "If-None-Match", "required": False, "schema": _STR, "description": "304 when it matches the ETag"},
]


def document_bodies(spec: dict) -> dict:
    paths = spec.get("paths", {})
    chunk_put = paths.get("/uploads/{upload_id}/chunks/{index}", {}).get("put")
    if chunk_put is not None:
        chunk_put["requestBody"] = CHUNK_PUT_BODY
        chunk_put["parameters"] = [*chunk_put.get("parameters", []), *CHUNK_PUT_HEADERS]
        chunk_put.setdefault("responses", {}).setdefault(
            "422",
            {
                "description": "A checksum header is not a checksum (validation_error)",
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}},
            },
        )
    download = paths.get("/files/{file_id}", {}).get("get")
    if download is not None:
        download["parameters"] = [*download.get("parameters", []), *RANGE_HEADERS]
        paths["/files/{file_id}"]["head"] = {
            **{k: v for k, v in download.items() if k not in ("responses", "operationId")},
            "summary": "A file's download headers (size, ETag, checksums), without the body",
            "operationId": "head_files_file_id",
            "responses": {k: v for k, v in download["responses"].items() if k in ("200", "206", "304", "401", "404", "416")},
        }
    if "post" in paths.get("/upload_chunk", {}):
        op = paths["/upload_chunk"]["post"]
        op["requestBody"] = chunk_body()
        op["parameters"] = [*op.get("parameters", []), *chunk_query()]
    for path, ops in paths.items():  # the owners another service names: validate_username's rule, not the account rules
        if path.startswith("/internal/owners/{username}"):
            for op in ops.values():
                for param in op.get("parameters", ()):
                    if param.get("in") == "path" and param.get("name") == "username":
                        param["schema"] = {"type": "string", "pattern": OWNER_PATTERN}
    for path in ("/files", "/send/{username}", "/upload_chunk"):
        op = paths.get(path, {}).get("post")
        if op is None:
            continue
        if path != "/upload_chunk":
            op["requestBody"] = file_body()
        op.setdefault("responses", {})["415"] = {
            "description": "No body, or a body in none of the documented media types (unsupported_media_type)",
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}},
        }
    return spec


def document_name_rules(spec: dict, max_bytes: int) -> dict:
    """Every file-name field (``schemas.file_name``) gets the rules ``validate_name`` checks, made from it."""
    rules = {
        "minLength": 1,
        "maxLength": max_bytes,  # characters; the limit is in UTF-8 bytes, as the description says
        "pattern": name_pattern(),
    }

    def walk(node):
        if isinstance(node, dict):
            if marker := node.pop(NAME_RULE, False):
                node.update(rules, maxLength=min(node.get("maxLength", max_bytes), max_bytes))
                if marker == OR_EMPTY:
                    node.update(minLength=0, pattern=f"^$|{rules['pattern']}")
                node["description"] = (
                    f"{node.get('description', '')} At most {max_bytes} bytes in UTF-8, no '/', '\\' or control "
                    "characters, no whitespace at either end, and at least one visible character other than '.'."
                ).strip()
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(spec)
    return spec


def document_limits(spec: dict, max_chunk_bytes: int) -> dict:
    """The limits a deployment sets (settings), where a schema field is bounded by them."""
    upload = spec.get("components", {}).get("schemas", {}).get("UploadIn", {}).get("properties", {})
    if "chunk_size" in upload:
        upload["chunk_size"]["maximum"] = max_chunk_bytes
    for param in spec.get("paths", {}).get("/send/{username}", {}).get("post", {}).get("parameters", ()):
        if param.get("in") == "path" and param.get("name") == "username":
            param["description"] = "The recipient: an account that exists, not yourself."
    return spec


def init_app(app, max_name_bytes: int = 255, max_chunk_bytes: int | None = None) -> None:
    from redfile_common.error_handlers import chain_spec_processor

    chain_spec_processor(app, document_tus, first=True)
    if max_chunk_bytes is not None:
        chain_spec_processor(app, lambda spec: document_limits(spec, max_chunk_bytes), first=True)
    # chained "first": the last chained runs first, so the bodies are documented, then their names
    chain_spec_processor(app, lambda spec: document_name_rules(spec, max_name_bytes), first=True)
    chain_spec_processor(app, document_bodies, first=True)  # before the common error responses are added
