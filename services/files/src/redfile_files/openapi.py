"""The request bodies apiflask's ``@input`` cannot describe: one operation, several content types.

``POST /upload_chunk`` and ``POST /files`` parse their bodies by hand (see
``bodies.py``); this spec processor documents what they accept.
"""

from __future__ import annotations

_BINARY = {"type": "string", "format": "binary"}
_INT = {"type": "integer"}
_STR = {"type": "string"}

_CHUNK_FIELDS = {
    "file_id": {**_STR, "description": "omit on the first chunk; a new upload is created"},
    "chunk_index": {**_INT, "minimum": 0},
    "total_chunks": {**_INT, "minimum": 1},
    "sha256": {**_STR, "description": "optional SHA-256 of the chunk, hex; verified"},
}
_CHUNK_REQUIRED = ["chunk_index", "total_chunks", "chunk_data"]

CHUNK_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": _CHUNK_REQUIRED,
                "properties": {**_CHUNK_FIELDS, "chunk_data": {**_BINARY, "description": "the chunk (a file part; a text field is read as base64)"}},
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": _CHUNK_REQUIRED,
                "properties": {**_CHUNK_FIELDS, "chunk_data": {**_STR, "format": "byte", "description": "the chunk, base64"}},
            }
        },
        "application/octet-stream": {
            "schema": {**_BINARY, "description": "the chunk; the other fields go in the query string"}
        },
    },
}
CHUNK_QUERY = [
    {"in": "query", "name": name, "required": name in _CHUNK_REQUIRED, "schema": schema,
     "description": "only with an application/octet-stream body"}
    for name, schema in _CHUNK_FIELDS.items()
]  # fmt: skip

FILE_BODY = {
    "required": True,
    "content": {
        "multipart/form-data": {
            "schema": {
                "type": "object",
                "required": ["file"],
                "properties": {
                    "file": {**_BINARY, "description": "the file; its filename is the default name"},
                    "name": _STR,
                    "mime_type": {**_STR, "description": "default: the part's Content-Type, else application/octet-stream"},
                },
            }
        },
        "application/json": {
            "schema": {
                "type": "object",
                "required": ["name", "data"],
                "properties": {
                    "name": _STR,
                    "mime_type": {**_STR, "description": "default application/octet-stream"},
                    "data": {**_STR, "format": "byte", "description": "the file, base64"},
                },
            }
        },
    },
}


def document_bodies(spec: dict) -> dict:
    paths = spec.get("paths", {})
    if "post" in paths.get("/upload_chunk", {}):
        op = paths["/upload_chunk"]["post"]
        op["requestBody"] = CHUNK_BODY
        op["parameters"] = [*op.get("parameters", []), *CHUNK_QUERY]
    if "post" in paths.get("/files", {}):
        paths["/files"]["post"]["requestBody"] = FILE_BODY
    return spec


def init_app(app) -> None:
    app.spec_processor(document_bodies)
