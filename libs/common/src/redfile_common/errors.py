"""One error shape for every Redfile response that is not a success.

    {"error": {"code": "<stable code>", "message": "<human text>", "details": {...}}}

Domain code raises ``ApiError`` with a code from ``CATALOGUE``.  This module
has no Flask import, so domain layers can use it; ``error_handlers`` turns
these, validation errors, werkzeug HTTP errors and Redis outages into the one
shape.
"""

from __future__ import annotations

from typing import Any

# code -> (HTTP status, default message).  Codes are part of the API: never rename one.
CATALOGUE: dict[str, tuple[int, str]] = {
    "bad_request": (400, "The request could not be understood."),
    "invalid_json": (400, "The request body is not valid JSON."),
    "invalid_base64": (400, "The data is not valid base64."),
    "invalid_name": (400, "The name is not allowed."),
    "invalid_folder": (400, "The folder is not allowed."),
    "unsupported_query": (400, "This combination of filters and sort is not supported."),
    "invalid_mime_type": (400, "The MIME type is not valid."),
    "invalid_chunk": (400, "The chunk is not valid."),
    "checksum_mismatch": (400, "The data does not match its checksum."),
    "unauthorized": (401, "Authentication is required."),
    "invalid_token": (401, "The token is missing, malformed, expired or not valid here."),
    "token_revoked": (401, "The token is no longer valid."),
    "invalid_credentials": (401, "Wrong username or password."),
    "forbidden": (403, "You are not allowed to do this."),
    "not_found": (404, "Not found."),
    "file_not_found": (404, "No such file."),
    "upload_not_found": (404, "No such upload."),
    "share_not_found": (404, "No such share link."),
    "share_gone": (410, "This share link has expired or has been used up."),
    "share_password_required": (401, "This share link needs its password."),
    "user_not_found": (404, "No such user."),
    "method_not_allowed": (405, "Method not allowed."),
    "conflict": (409, "The request conflicts with the current state."),
    "precondition_failed": (412, "A precondition of the request failed."),
    "chunk_conflict": (409, "A different chunk is already stored at this index."),
    "upload_incomplete": (409, "The upload is missing chunks."),
    "user_exists": (409, "A user with this name already exists."),
    "payload_too_large": (413, "The request body is too large."),
    "quota_exceeded": (413, "This would exceed your storage quota."),
    "unsupported_media_type": (415, "Unsupported content type."),
    "range_not_satisfiable": (416, "The requested range is not satisfiable."),
    "validation_error": (422, "The request is not valid."),
    "size_mismatch": (422, "The stored bytes do not add up to the declared size."),
    "too_many_requests": (429, "Too many requests; try again later."),
    "internal_error": (500, "Internal server error."),
    "stored_data_corrupt": (500, "The stored data failed its integrity check."),
    "bad_gateway": (502, "An upstream service failed."),
    "service_unavailable": (503, "The service is temporarily unavailable; try again later."),
    "storage_unavailable": (503, "Part of the storage that holds this file is unavailable; try again later."),
    "insufficient_storage": (507, "The storage is full."),
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    412: "precondition_failed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    416: "range_not_satisfiable",
    422: "validation_error",
    429: "too_many_requests",
    502: "bad_gateway",
    503: "service_unavailable",
    507: "insufficient_storage",
}


class ApiError(Exception):
    """An error the client should see, with a stable code."""

    def __init__(
        self,
        code: str,
        message: str | None = None,
        *,
        details: dict[str, Any] | None = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        default_status, default_message = CATALOGUE[code]
        self.code = code
        self.status = status or default_status
        self.message = message or default_message
        self.details = details
        self.headers = headers or {}
        super().__init__(f"{code}: {self.message}")


def error_body(code: str, message: str, details: Any = None) -> dict:
    err: dict[str, Any] = {"code": code, "message": message}
    if details:
        err["details"] = details
    return {"error": err}


def code_for_status(status: int) -> str:
    return _STATUS_CODES.get(status, "bad_request" if 400 <= status < 500 else "internal_error")
