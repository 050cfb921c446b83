"""One error shape for every Redfile response that is not a success.

    {"error": {"code": "<stable code>", "message": "<human text>", "details": {...}}}

Domain code raises ``ApiError`` (or a subclass) with a code from ``CATALOGUE``;
validation errors, werkzeug HTTP errors and Redis outages are turned into the
same shape by ``register_error_handlers``.  An unknown exception becomes a
generic 500: its text never reaches the client, its stack goes to the log.
"""

from __future__ import annotations

from typing import Any

import redis
import structlog
from flask import Flask, Request, g, jsonify
from werkzeug.exceptions import HTTPException

log = structlog.get_logger("redfile.errors")

# code -> (HTTP status, default message).  Codes are part of the API: never rename one.
CATALOGUE: dict[str, tuple[int, str]] = {
    "bad_request": (400, "The request could not be understood."),
    "invalid_json": (400, "The request body is not valid JSON."),
    "invalid_base64": (400, "The data is not valid base64."),
    "invalid_name": (400, "The name is not allowed."),
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
    "user_not_found": (404, "No such user."),
    "method_not_allowed": (405, "Method not allowed."),
    "conflict": (409, "The request conflicts with the current state."),
    "chunk_conflict": (409, "A different chunk is already stored at this index."),
    "upload_incomplete": (409, "The upload is missing chunks."),
    "user_exists": (409, "A user with this name already exists."),
    "payload_too_large": (413, "The request body is too large."),
    "unsupported_media_type": (415, "Unsupported content type."),
    "validation_error": (422, "The request is not valid."),
    "size_mismatch": (422, "The stored bytes do not add up to the declared size."),
    "too_many_requests": (429, "Too many requests; try again later."),
    "internal_error": (500, "Internal server error."),
    "bad_gateway": (502, "An upstream service failed."),
    "service_unavailable": (503, "The service is temporarily unavailable; try again later."),
    "insufficient_storage": (507, "The storage is full."),
}

_STATUS_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
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


def error_response(code: str, message: str | None = None, *, status: int | None = None, details: Any = None, headers: dict | None = None):
    default_status, default_message = CATALOGUE.get(code, (status or 500, "Error."))
    resp = jsonify(error_body(code, message or default_message, details))
    resp.status_code = status or default_status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


def code_for_status(status: int) -> str:
    return _STATUS_CODES.get(status, "bad_request" if 400 <= status < 500 else "internal_error")


class JsonRequest(Request):
    """Flask's request, but a body that does not parse is our ``invalid_json`` in every mode."""

    def on_json_loading_failed(self, e: ValueError | None):
        raise ApiError("invalid_json")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that give every error the one shape."""

    @app.errorhandler(ApiError)
    def _api_error(exc: ApiError):
        return error_response(exc.code, exc.message, status=exc.status, details=exc.details, headers=exc.headers)

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        status = exc.code or 500
        code = code_for_status(status)
        message = CATALOGUE.get(code, (status, exc.description))[1]
        data = getattr(exc, "data", None) or {}
        if status == 400 and "Invalid JSON body." in ((data.get("messages") or {}).get("json") or ()):
            # webargs (under apiflask's @input) aborts with this for a body that does not parse.
            code, message = "invalid_json", CATALOGUE["invalid_json"][1]
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        return error_response(code, message, status=status, headers=headers)

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    def _redis_down(exc: Exception):
        log.error("redis_unavailable", error_type=type(exc).__name__)
        return error_response("service_unavailable", headers={"Retry-After": "5"})

    @app.errorhandler(redis.exceptions.ResponseError)
    def _redis_response(exc: redis.exceptions.ResponseError):
        if str(exc).startswith("OOM"):
            log.error("redis_out_of_memory")
            return error_response("insufficient_storage")
        return _unexpected(exc)

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        if isinstance(exc, HTTPException):  # pragma: no cover - routed above
            return _http_error(exc)
        log.error("unhandled_exception", exc_info=exc, error_type=type(exc).__name__)
        g.unhandled_error = True
        return error_response("internal_error")


def apiflask_error_processor(error) -> tuple[dict, int, dict]:
    """APIFlask calls this for its own HTTPError (validation errors, abort())."""
    status = error.status_code
    code = code_for_status(status)
    details = error.detail or None
    message = CATALOGUE.get(code, (status, error.message))[1]
    if code == "validation_error" and isinstance(details, dict):
        # apiflask nests errors under the location ("json", "query", "form", ...).
        message = "The request is not valid: " + "; ".join(
            f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
            for loc in details.values() if isinstance(loc, dict)
            for field, msgs in loc.items()
        )[:500]
    elif error.message and status < 500 and code not in CATALOGUE:
        message = error.message
    return error_body(code, message, details), status, dict(error.headers or {})
