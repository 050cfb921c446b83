"""Flask side of the one error shape (see ``errors``).

Validation errors, werkzeug HTTP errors, Redis outages and domain errors all
become ``{"error": {"code", "message", "details"?}}``.  An unknown exception
becomes a generic 500: its text never reaches the client, its stack goes to
the log.
"""

from __future__ import annotations

import json
import re
from typing import Any

import redis
import structlog
from flask import Flask, Request, g, jsonify, request
from werkzeug.exceptions import HTTPException

from .errors import CATALOGUE, ApiError, code_for_status, error_body

log = structlog.get_logger("redfile.errors")


def error_response(code: str, message: str | None = None, *, status: int | None = None, details: Any = None, headers: dict | None = None):
    default_status, default_message = CATALOGUE.get(code, (status or 500, "Error."))
    resp = jsonify(error_body(code, message or default_message, details))
    resp.status_code = status or default_status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


class JsonRequest(Request):
    """Flask's request, but a body that does not parse is our ``invalid_json`` in every mode."""

    def on_json_loading_failed(self, e: ValueError | None):
        raise ApiError("invalid_json")


# A \uD800-\uDFFF escape: the only way JSON text can smuggle a lone surrogate,
# which no str.encode("utf-8") downstream (hashing, Redis) would survive.
_SURROGATE_ESCAPE = re.compile(rb"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")


def _has_lone_surrogate(value: Any) -> bool:
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return True
        return False
    if isinstance(value, dict):
        return any(_has_lone_surrogate(k) or _has_lone_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_has_lone_surrogate(v) for v in value)
    return False


def reject_lone_surrogates() -> None:
    """before_request: refuse JSON text that is not valid Unicode, for every route at once."""
    if not request.is_json or (request.content_length or 0) > 1024 * 1024:
        return  # large bodies (base64 chunks) are ASCII by construction, or rejected by their parser
    body = request.get_data(cache=True)
    if not _SURROGATE_ESCAPE.search(body):
        return
    try:
        data = json.loads(body)
    except ValueError:
        return  # the route's parser reports invalid_json
    if _has_lone_surrogate(data):
        raise ApiError("invalid_json", "The JSON body holds text that is not valid Unicode (a lone surrogate).")


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that give every error the one shape."""

    app.before_request(reject_lone_surrogates)

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
