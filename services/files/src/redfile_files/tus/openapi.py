"""The tus 1.0.0 endpoints in the files service's OpenAPI document.

``http.py`` routes tus by hand (one view per URL, methods dispatched by the
protocol, ``X-HTTP-Method-Override`` included), so apiflask cannot describe it:
this writes its operations, their request headers (the formats are
``protocol.py``'s), the ``application/offset+octet-stream`` bodies and the
answers, errors in the one JSON shape.
"""

from __future__ import annotations

from redfile_files.tus.protocol import ALGORITHMS, EXTENSIONS, OFFSET_CONTENT_TYPE, TUS_VERSION

_ERROR = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}}
_BEARER: list[dict[str, list[str]]] = [{"BearerAuth": []}]
_UINT = {"type": "string", "pattern": r"^[0-9]{1,19}$"}

_ERRORS = {
    "400": "A header or the body is malformed (bad_request), or its checksum did not match (checksum_mismatch)",
    "401": "No valid access token (unauthorized)",
    "403": "The token may not write files (forbidden)",
    "404": "No such upload of yours (upload_not_found)",
    "405": "A method this URL does not take (method_not_allowed), with Allow",
    "409": "Upload-Offset is not the upload's offset, or the upload is finished (conflict)",
    "412": f"Tus-Resumable is not {TUS_VERSION} (precondition_failed), with Tus-Version",
    "413": "Over Tus-Max-Size, the largest file or the quota (payload_too_large, quota_exceeded)",
    "415": f"A body that is not {OFFSET_CONTENT_TYPE} (unsupported_media_type)",
    "460": "The body does not match Upload-Checksum; nothing was stored (checksum_mismatch)",
    "500": "Stored bytes failed their checksum (stored_data_corrupt)",
    "503": "Redis is unavailable (service_unavailable), with Retry-After",
    "507": "Redis is out of memory (insufficient_storage)",
}


def _header(name: str, description: str, schema: dict | None = None, *, required: bool = False) -> dict:
    return {"in": "header", "name": name, "required": required, "schema": schema or {"type": "string"}, "description": description}


_RESUMABLE = _header("Tus-Resumable", "The protocol version", {"type": "string", "enum": [TUS_VERSION]}, required=True)
_CHECKSUM = _header(
    "Upload-Checksum",
    f"<algorithm> <base64 digest> of this request's body ({', '.join(ALGORITHMS)}); a mismatch is a 460 and nothing is stored",
    {"type": "string", "pattern": rf"^(?:{'|'.join(sorted(ALGORITHMS))}) [A-Za-z0-9+/]+={{0,2}}$"},
)
_BODY = {"schema": {"type": "string", "format": "binary"}}


def _errors(*statuses: str) -> dict:
    return {status: {"description": _ERRORS[status], "content": _ERROR} for status in statuses}


def _answer(description: str, **headers: str) -> dict:
    return {
        "description": description,
        "headers": {name: {"schema": {"type": "string"}, "description": text} for name, text in headers.items()},
    }


def document_tus(spec: dict) -> dict:
    paths = spec.setdefault("paths", {})
    paths["/tus/"] = {
        "options": {
            "summary": "tus discovery: the version, the extensions and the limits (no token needed; also the CORS preflight)",
            "operationId": "tus_options",
            "tags": ["Tus"],
            "security": [],
            "responses": {
                "204": _answer(
                    "What this server speaks",
                    **{
                        "Tus-Version": TUS_VERSION,
                        "Tus-Extension": ",".join(EXTENSIONS),
                        "Tus-Max-Size": "bytes",
                        "Tus-Checksum-Algorithm": ",".join(ALGORITHMS),
                    },
                )
            },
        },
        "post": {
            "summary": "Create an upload (exactly one of Upload-Length and Upload-Defer-Length: 1, but for a final concatenation, "
            "which takes neither and no body); may carry the first bytes, at most Upload-Length",
            "operationId": "tus_create",
            "tags": ["Tus"],
            "security": _BEARER,
            "parameters": [
                _RESUMABLE,
                _header("Upload-Length", "The file's size in bytes (or Upload-Defer-Length)", _UINT),
                _header("Upload-Defer-Length", "1: the size comes with a later PATCH", {"type": "string", "enum": ["1"]}),
                _header(
                    "Upload-Metadata",
                    "key base64-value pairs, comma-separated: filename, filetype, folder (as the name, MIME type and folder)",
                    {"type": "string", "pattern": r"^[^\s,]+(?: [A-Za-z0-9+/]*={0,2})?(?:,[^\s,]+(?: [A-Za-z0-9+/]*={0,2})?)*$"},
                ),
                _header(
                    "Upload-Concat",
                    "partial, or final;<upload URL> <upload URL> ... (URLs of your partial uploads)",
                    {"type": "string", "pattern": r"^(?:partial|final;\S+(?: \S+)*)$"},
                ),
                _CHECKSUM,
            ],
            "requestBody": {"required": False, "content": {OFFSET_CONTENT_TYPE: _BODY}},
            "responses": {
                "201": _answer(
                    "Created",
                    Location="the upload's URL",
                    **{"Upload-Offset": "bytes stored", "Upload-Expires": "when it expires unfinished"},
                ),
                **_errors("400", "401", "403", "404", "405", "409", "412", "413", "415", "460", "503", "507"),
            },
        },
    }
    upload_id = {"in": "path", "name": "upload_id", "required": True, "schema": {"type": "string"}}
    paths["/tus/{upload_id}"] = {
        "parameters": [upload_id],
        "head": {
            "summary": "The offset to resume at (Upload-Offset), the length and the metadata",
            "operationId": "tus_head",
            "tags": ["Tus"],
            "security": _BEARER,
            "parameters": [_RESUMABLE],
            "responses": {
                "200": _answer("The upload", **{"Upload-Offset": "bytes stored", "Upload-Length": "the size, once known"}),
                **_errors("401", "403", "404", "412", "503"),
            },
        },
        "patch": {
            "summary": "Bytes at Upload-Offset (and Upload-Length, when it was deferred)",
            "operationId": "tus_patch",
            "tags": ["Tus"],
            "security": _BEARER,
            "parameters": [
                _RESUMABLE,
                _header("Upload-Offset", "Where these bytes go: the upload's offset now", _UINT, required=True),
                _header("Upload-Length", "The file's size, when it was deferred", _UINT),
                _CHECKSUM,
            ],
            "requestBody": {"required": True, "content": {OFFSET_CONTENT_TYPE: _BODY}},
            "responses": {
                "204": _answer("Stored", **{"Upload-Offset": "the new offset", "Upload-Expires": "when it expires unfinished"}),
                **_errors("400", "401", "403", "404", "409", "412", "413", "415", "460", "503", "507"),
            },
        },
        "get": {
            "summary": "The finished file, as GET /files/{file_id} serves it",
            "operationId": "tus_get",
            "tags": ["Tus"],
            "security": _BEARER,
            "responses": {
                "200": {"description": "The file's bytes", "content": {"application/octet-stream": _BODY}},
                **_errors("401", "403", "404", "409", "500", "503"),
            },
        },
        "delete": {
            "summary": "Terminate an upload (or delete the file it became)",
            "operationId": "tus_delete",
            "tags": ["Tus"],
            "security": _BEARER,
            "parameters": [_RESUMABLE],
            "responses": {"204": {"description": "Gone"}, **_errors("401", "403", "404", "412", "503")},
        },
    }
    return spec
