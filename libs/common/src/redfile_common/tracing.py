"""OpenTelemetry: one trace across services and into Redis.

The exporter is configured by the standard ``OTEL_*`` variables and is off
when none of them asks for one.  ``init_tracing`` installs the tracer
provider once per process; gunicorn calls it from ``post_fork`` (the
BatchSpanProcessor's thread must be started in the worker, not inherited
from the master), and the app factory calls it again harmlessly.
"""

from __future__ import annotations

import os
import threading

from flask import Flask
from opentelemetry import trace

_lock = threading.Lock()
_provider_set = False
_libraries_instrumented = False


def exporter_requested() -> bool:
    wanted = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if wanted == "none":
        return False
    return bool(wanted) or any(
        os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    )


def init_tracing(service_name: str, span_processor=None) -> None:
    """Install a TracerProvider when an exporter is configured (or a processor is given)."""
    global _provider_set
    with _lock:
        if _provider_set:
            return
        if span_processor is None and not exporter_requested():
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"redfile-{service_name}")})
        provider = TracerProvider(resource=resource)
        if span_processor is None:
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.trace.export import BatchSpanProcessor

            span_processor = BatchSpanProcessor(OTLPSpanExporter())
        provider.add_span_processor(span_processor)
        trace.set_tracer_provider(provider)
        _provider_set = True


def instrument_app(app: Flask) -> None:
    """Flask spans for this app; Redis and outgoing requests spans once per process."""
    global _libraries_instrumented
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")
    with _lock:
        if not _libraries_instrumented:
            from opentelemetry.instrumentation.redis import RedisInstrumentor
            from opentelemetry.instrumentation.requests import RequestsInstrumentor

            RedisInstrumentor().instrument()
            RequestsInstrumentor().instrument()
            _libraries_instrumented = True
