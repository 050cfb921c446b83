"""Structured JSON logs: one line per request, gunicorn's own lines in the same format.

Every line carries the service name; request lines carry request_id (taken
from ``X-Request-ID`` when it is well formed, else generated, and echoed
back), trace_id/span_id, user, method, route, status and duration_ms.
Request bodies, headers and query strings are never logged, and a last
processor masks any field whose name says it holds a secret.
"""

from __future__ import annotations

import logging
import logging.config
import re
import sys
import time
import uuid

import structlog
from flask import Flask, g, request
from opentelemetry import trace

_REQUEST_ID = re.compile(r"^[A-Za-z0-9._\-]{1,128}$")
_SECRET_FIELDS = re.compile(r"pass(word)?|secret|token|authorization|cookie|api_?key|signature|content$", re.I)
_configured_for: str | None = None


def _add_trace_ids(logger, method, event: dict) -> dict:
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        event.setdefault("trace_id", format(ctx.trace_id, "032x"))
        event.setdefault("span_id", format(ctx.span_id, "016x"))
    return event


def _mask_secrets(logger, method, event: dict) -> dict:
    for key in list(event):
        if key not in ("event", "token_kind") and _SECRET_FIELDS.search(key):
            event[key] = "[masked]"
    return event


def _shared_processors(service: str) -> list:
    def add_service(logger, method, event):
        event.setdefault("service", service)
        return event

    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        add_service,
        _add_trace_ids,
        _mask_secrets,
    ]


class StdoutHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stdout`` is now (so test capture and reopened streams work)."""

    def __init__(self) -> None:
        super().__init__(sys.stdout)

    @property
    def stream(self):
        return sys.stdout

    @stream.setter
    def stream(self, value) -> None:
        pass


def logging_dict_config(service: str, level: str = "INFO") -> dict:
    """A ``logging.config.dictConfig`` mapping; gunicorn's ``logconfig_dict`` uses it too."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "json": {
                "()": structlog.stdlib.ProcessorFormatter,
                "processors": [
                    structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                    structlog.processors.format_exc_info,
                    structlog.processors.JSONRenderer(),
                ],
                "foreign_pre_chain": _shared_processors(service),
            }
        },
        "handlers": {"stdout": {"()": StdoutHandler, "formatter": "json"}},
        "root": {"handlers": ["stdout"], "level": level.upper()},
        "loggers": {
            "gunicorn.error": {"handlers": ["stdout"], "level": level.upper(), "propagate": False},
            "gunicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "werkzeug": {"level": "WARNING"},
            "urllib3": {"level": "WARNING"},
        },
    }


def configure_logging(service: str, level: str = "INFO") -> None:
    """Idempotent per process: the gunicorn config and the app factory may both call it."""
    global _configured_for
    if _configured_for == service:
        return
    logging.config.dictConfig(logging_dict_config(service, level))
    structlog.configure(
        processors=[*_shared_processors(service), structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    _configured_for = service


class _CurrentStdout:
    """A file that is whatever ``sys.stdout`` is now, as ``StdoutHandler`` writes."""

    def write(self, text: str) -> None:
        sys.stdout.write(text)

    def flush(self) -> None:
        sys.stdout.flush()


def _request_logger(service: str):
    """The per-request line's logger: structlog's direct pipeline, no stdlib record, handler or formatter.

    The same processors and JSON as every other line (``_shared_processors``),
    written with one ``write`` + ``flush`` like ``StdoutHandler``.  About a
    tenth of a small request's CPU would go to the stdlib round trip.
    Whether it writes follows the ``redfile.request`` stdlib logger's level.
    """

    def add_logger_name(logger, method, event):
        event["logger"] = "redfile.request"
        return event

    processors = [p for p in _shared_processors(service) if p is not structlog.stdlib.add_logger_name]
    processors.insert(2, add_logger_name)
    return structlog.wrap_logger(
        structlog.WriteLogger(_CurrentStdout()),  # type: ignore[arg-type]  # typed as TextIO; WriteLogger calls write and flush only
        processors=[*processors, structlog.processors.JSONRenderer()],
        wrapper_class=structlog.make_filtering_bound_logger(logging.DEBUG),
        cache_logger_on_first_use=True,
    )


_CONVERTER = re.compile(r"<[^:<>]+:([^<>]+)>")
UNMATCHED = "<unmatched>"


def route_template() -> str:
    """The request's route as its log line and its metrics name it: ``/files/<file_id>`` (converters left out:
    ``<file:file_id>`` is how the code routes, not what an operator filters on), or ``<unmatched>``."""
    return template(request.url_rule.rule) if request.url_rule is not None else UNMATCHED


def template(rule: str) -> str:
    """A URL rule without its converters' names: ``/files/<file:file_id>`` is ``/files/<file_id>``."""
    return _CONVERTER.sub(r"<\1>", rule)


def init_request_logging(app: Flask, service: str) -> None:
    log = _request_logger(service)
    gate = logging.getLogger("redfile.request")

    @app.before_request
    def _start():
        incoming = request.headers.get("X-Request-ID", "")
        g.request_id = incoming if _REQUEST_ID.match(incoming) else uuid.uuid4().hex
        g.request_started = time.perf_counter()
        structlog.contextvars.clear_contextvars()
        structlog.contextvars.bind_contextvars(request_id=g.request_id)

    @app.after_request
    def _finish(response):
        request_id = g.get("request_id")
        if request_id:
            response.headers["X-Request-ID"] = request_id
        started = g.get("request_started")
        rule = route_template()
        fields = {
            "method": request.method,
            "route": rule,
            "status": response.status_code,
            "duration_ms": round((time.perf_counter() - started) * 1000, 2) if started else None,
            "user": g.get("log_user"),
            "remote": request.remote_addr,
        }
        if response.status_code >= 500:
            if gate.isEnabledFor(logging.ERROR):
                log.error("request", **fields)
        elif gate.isEnabledFor(logging.INFO):
            log.info("request", **fields)
        return response

    @app.teardown_request
    def _clear(exc):
        structlog.contextvars.clear_contextvars()


def print_line(message: str) -> None:
    """For the dev launcher: plain text for humans on stderr."""
    print(message, file=sys.stderr, flush=True)
