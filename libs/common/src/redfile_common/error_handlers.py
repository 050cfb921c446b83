"""Flask side of the one error shape (see ``errors``).

Validation errors, werkzeug HTTP errors, Redis outages and domain errors all
become ``{"error": {"code", "message", "details"?}}``.  An unknown exception
becomes a generic 500: its text never reaches the client, its stack goes to
the log.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import redis
import structlog
from flask import Flask, Request, current_app, g, jsonify, request
from werkzeug.exceptions import ClientDisconnected, HTTPException, RequestEntityTooLarge
from werkzeug.wsgi import LimitedStream

from . import deadline
from .breaker import BreakerOpen
from .errors import CATALOGUE, ApiError, code_for_status, error_body

log = structlog.get_logger("redfile.errors")


def error_response(code: str, message: str | None = None, *, status: int | None = None, details: Any = None, headers: dict | None = None):
    default_status, default_message = CATALOGUE.get(code, (status or 500, "Error."))
    resp = jsonify(error_body(code, message or default_message, details))
    resp.status_code = status or default_status
    for k, v in (headers or {}).items():
        resp.headers[k] = v
    return resp


class NotStrictJson(ValueError):
    """Parses with ``json``, but is not JSON we accept; the message says why."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict:
    obj = dict(pairs)
    if len(obj) != len(pairs):
        raise NotStrictJson("The JSON body has an object with the same key twice.")
    return obj


def _no_constant(name: str):
    raise NotStrictJson(f"The JSON body holds {name}, which is not JSON.")


class StrictJson:
    """``JsonRequest.json_module``: RFC 8259 JSON only, read one way.

    A key given twice (which parsers resolve differently), ``NaN``/``Infinity``
    (not JSON) and nesting deeper than the parser's recursion limit (a
    ``RecursionError``, which would be a 500) are all a ``ValueError``, so
    ``invalid_json``.
    """

    @staticmethod
    def loads(s, **kwargs):
        try:
            return json.loads(s, object_pairs_hook=_unique_keys, parse_constant=_no_constant, **kwargs)
        except RecursionError:
            raise NotStrictJson("The JSON body is nested too deeply.") from None

    @staticmethod
    def dumps(obj, **kwargs):
        from flask import json as flask_json

        return flask_json.dumps(obj, **kwargs)


class JsonRequest(Request):
    """Flask's request, but a body that does not parse is our ``invalid_json`` in every mode."""

    @property
    def json_module(self):
        return StrictJson

    @json_module.setter
    def json_module(self, value) -> None:
        """Flask sets ``app.json`` here for every request; request bodies are parsed by ``StrictJson`` all the same."""

    def on_json_loading_failed(self, e: ValueError | None):
        raise ApiError("invalid_json", str(e) if isinstance(e, NotStrictJson) else None)


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


def _has_body() -> bool:
    return bool(request.content_length) or "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def body_limit() -> tuple[int | None, str | None]:
    """The largest body the request's route takes, and the name its 413 gives that limit.

    A route in the app's ``BODY_LIMITS`` (endpoint -> (bytes, name)) has its own (a chunk, a tus
    upload's bytes); every other one the app's ``MAX_CONTENT_LENGTH`` (name None: werkzeug's 413,
    which ``_http_error`` words).  (None, None): no limit.
    """
    limits = current_app.config.get("BODY_LIMITS") or {}
    if request.endpoint in limits:
        return limits[request.endpoint]
    return current_app.config.get("MAX_CONTENT_LENGTH"), None


def refuse_oversized_bodies() -> None:
    """before_request: a Content-Length over the route's largest body (``body_limit``) is a 413 ``payload_too_large``
    before anything reads the body; one within it gets its share of the request's time budget (``deadline.grant_body``).

    The one place a claimed length is checked against the route's limit: a client that claims a huge
    body (and sends it slowly, or not at all) gets no more time to wait on Redis than its route allows.
    A request no route takes gets its 404 or 405, and nothing more.  A body without a length (chunked)
    is bounded as it is read (werkzeug's ``MAX_CONTENT_LENGTH``, the routes' own readers).
    """
    length = request.content_length
    if not length or request.routing_exception is not None:
        return
    limit, name = body_limit()
    if limit is not None and length > limit:
        if name is None:
            raise RequestEntityTooLarge()
        raise ApiError("payload_too_large", f"The body is over the {limit:,} bytes this request takes.", details={name: limit})
    deadline.grant_body(length)


def refuse_short_bodies() -> None:
    """before_request: a body that ends before its Content-Length is a 400 ``bad_request``, not a shorter body.

    gunicorn marks its input as terminated (``wsgi.input_terminated``), so werkzeug
    trusts it and reads a body cut short by the client as if it were whole: a JSON
    body or a chunk that happens to parse would be stored.  This puts werkzeug's
    ``LimitedStream`` back, which raises ``ClientDisconnected`` (a 400) instead.
    Runs before anything reads the body.  Not for the app's ``LENGTH_CHECKED_ENDPOINTS``,
    which read exactly Content-Length bytes themselves and deal with a body that ends
    early (refused, or what arrived kept, as tus asks): they read the server's input
    directly, without this extra copy.
    """
    environ = request.environ
    length = request.content_length
    if request.endpoint in current_app.config.get("LENGTH_CHECKED_ENDPOINTS", ()):
        return
    if length and environ.get("wsgi.input_terminated") and not isinstance(environ["wsgi.input"], LimitedStream):
        environ["wsgi.input"] = LimitedStream(environ["wsgi.input"], length)


def _raw_body_endpoint() -> bool:
    return request.endpoint in current_app.config.get("RAW_BODY_ENDPOINTS", ())


def reject_bodies_on_get() -> None:
    """before_request: a GET or HEAD carries no body (RFC 9110 gives it no meaning); one that does is a 400.

    Not for the app's ``RAW_BODY_ENDPOINTS``, which read their bodies themselves
    whatever the method (tus's ``X-HTTP-Method-Override`` makes a GET a PATCH), nor for a
    request no route takes: its 404 or 405 (with ``Allow``) says more than a 400 would.
    """
    if request.routing_exception is not None:
        return
    if request.method in ("GET", "HEAD") and _has_body() and not _raw_body_endpoint():
        raise ApiError("bad_request", f"A {request.method} request takes no body.")


def check_json_body() -> None:
    """before_request: a JSON body is parsed once, strictly (``StrictJson``), before any route runs.

    So every route -- with a schema, read by hand, or not reading its body at
    all -- refuses the same bodies with ``invalid_json``: one that does not
    parse, a duplicate key, ``NaN``, nesting too deep, or text that is not
    valid Unicode (a lone surrogate).  The parsed body is cached for the
    route.  Endpoints in the app's ``RAW_BODY_ENDPOINTS`` read their body as
    bytes whatever its type, and are left alone.
    """
    if not request.is_json or not _has_body() or _raw_body_endpoint() or request.routing_exception is not None:
        return  # a request no route takes gets its 404 or 405, whatever its body
    data = request.get_json(cache=True)  # invalid_json (JsonRequest) when it does not parse
    if (request.content_length or 0) > 1024 * 1024:
        return  # large bodies (base64 chunks) are ASCII by construction, or rejected by their parser
    if _SURROGATE_ESCAPE.search(request.get_data(cache=True)) and _has_lone_surrogate(data):
        raise ApiError("invalid_json", "The JSON body holds text that is not valid Unicode (a lone surrogate).")


_ERROR_CONTENT = {"application/json": {"schema": {"$ref": "#/components/schemas/HTTPError"}}}


def document_body_errors(spec: dict) -> dict:
    """Document the errors every operation with a request body can get, whatever its route says.

    A JSON body that does not parse (``check_json_body``) is a 400 ``invalid_json``, and a
    body over the app's ``MAX_CONTENT_LENGTH`` a 413 ``payload_too_large``, before the
    route runs.
    """
    schemas = spec.setdefault("components", {}).setdefault("schemas", {})
    schemas.setdefault("HTTPError", {"type": "object", "required": ["error"], "properties": {"error": {"type": "object"}}})
    for ops in spec.get("paths", {}).values():
        for op in ops.values():
            content = (op.get("requestBody") or {}).get("content") if isinstance(op, dict) else None
            if not content:
                continue
            responses = op.setdefault("responses", {})
            if "application/json" in content and "400" not in responses:
                responses["400"] = {"description": "The body is not valid JSON (invalid_json)", "content": _ERROR_CONTENT}
            if "413" not in responses:
                responses["413"] = {"description": "The body is too large (payload_too_large)", "content": _ERROR_CONTENT}
    return spec


def chain_spec_processor(app, processor, *, first: bool = False) -> None:
    """Run ``processor`` on the OpenAPI document after (``first``: before) the app's spec processor, if any."""
    previous = app.spec_callback
    if previous is None:
        app.spec_callback = processor
    elif first:
        app.spec_callback = lambda spec: previous(processor(spec))
    else:
        app.spec_callback = lambda spec: processor(previous(spec))


# Redis Cluster's answers while a slot moves (a command sent past redis-py's own redirects: a streamed chunk):
# nothing was done, and the same request a moment later goes where the slot now is.
CLUSTER_REDIRECTS = (redis.exceptions.MovedError, redis.exceptions.AskError, redis.exceptions.TryAgainError)


def register_error_handlers(app: Flask) -> None:
    """Install the handlers that give every error the one shape."""

    app.before_request(refuse_oversized_bodies)
    app.before_request(refuse_short_bodies)
    app.before_request(reject_bodies_on_get)
    app.before_request(check_json_body)
    if hasattr(app, "spec_callback"):  # an APIFlask app: its document names these errors too
        chain_spec_processor(app, document_body_errors)

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
        elif isinstance(exc, ClientDisconnected):  # refuse_short_bodies
            message = "The request body ended before Content-Length bytes arrived."
        details = None
        if status == 413 and current_app.config.get("MAX_CONTENT_LENGTH"):
            limit = current_app.config["MAX_CONTENT_LENGTH"]
            message = f"The request body is over the {limit:,} bytes this service takes in one request."
            if hint := current_app.config.get("TOO_LARGE_HINT"):
                message += f" {hint}"
            details = {"max_request_bytes": limit}
        headers = {}
        valid_methods = getattr(exc, "valid_methods", None)
        if status == 405 and valid_methods:
            headers["Allow"] = ", ".join(valid_methods)
        return error_response(code, message, status=status, details=details, headers=headers)

    try:
        from gunicorn.http.errors import ParseException
    except ImportError:  # pragma: no cover - gunicorn is a dependency; the dev server needs none of this
        ParseException = None
    if ParseException is not None:

        @app.errorhandler(ParseException)
        def _malformed_body(exc: Exception):
            # gunicorn parses a chunked body as the app reads it: a bad chunk surfaces here, not as a 400 of its own
            log.warning("malformed_request_body", error_type=type(exc).__name__)
            return error_response("bad_request", "The request body is malformed.")

    @app.errorhandler(redis.exceptions.ConnectionError)
    @app.errorhandler(redis.exceptions.TimeoutError)
    # a cluster that cannot serve a slot now (its primary down with no replica, or a failover under way)
    @app.errorhandler(redis.exceptions.ClusterDownError)
    @app.errorhandler(redis.exceptions.MasterDownError)
    @app.errorhandler(redis.exceptions.SlotNotCoveredError)
    @app.errorhandler(redis.exceptions.MovedError)
    @app.errorhandler(redis.exceptions.AskError)
    @app.errorhandler(redis.exceptions.TryAgainError)
    def _redis_down(exc: Exception):
        # a breaker that is open says when it lets a probe through; a slot moving, a second; anything else: a few
        if isinstance(exc, BreakerOpen):  # the breaker logs its own opening, not each refusal
            retry_after = math.ceil(exc.retry_after)
        elif isinstance(exc, CLUSTER_REDIRECTS):
            retry_after = 1
            log.warning("redis_cluster_redirect", error_type=type(exc).__name__)
        else:
            retry_after = 5
            log.error("redis_unavailable", error_type=type(exc).__name__)
        return error_response("service_unavailable", headers={"Retry-After": str(max(1, retry_after))})

    @app.errorhandler(redis.exceptions.ResponseError)
    def _redis_response(exc: redis.exceptions.ResponseError):
        # redis-py raises OutOfMemoryError for an OOM reply (a command's, or one inside a script)
        # and strips the "OOM" prefix from its text, so the class is what tells.
        if isinstance(exc, redis.exceptions.OutOfMemoryError) or str(exc).startswith("OOM"):
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
        message = (
            "The request is not valid: "
            + "; ".join(
                f"{field}: {' '.join(map(str, msgs)) if isinstance(msgs, list) else msgs}"
                for loc in details.values()
                if isinstance(loc, dict)
                for field, msgs in loc.items()
            )[:500]
        )
    elif error.message and status < 500 and code not in CATALOGUE:
        message = error.message
    return error_body(code, message, details), status, dict(error.headers or {})
