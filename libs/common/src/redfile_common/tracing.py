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


class TracingConfigError(RuntimeError):
    pass


def requested_exporters() -> list[str]:
    """The exporters the standard ``OTEL_*`` variables ask for; [] means tracing off.

    ``OTEL_SDK_DISABLED=true`` turns it off; ``OTEL_TRACES_EXPORTER`` names
    ``otlp``, ``console`` or ``none`` (comma-separated); with it unset, an OTLP
    endpoint variable alone means ``otlp``.  Only OTLP over HTTP/protobuf is
    installed; asking for gRPC or an unknown exporter stops the start-up.
    """
    if os.environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    raw = os.environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if raw:
        names = [n.strip() for n in raw.split(",") if n.strip() and n.strip() != "none"]
    elif any(os.environ.get(v) for v in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")):
        names = ["otlp"]
    else:
        names = []
    unknown = set(names) - {"otlp", "console"}
    if unknown:
        raise TracingConfigError(f"OTEL_TRACES_EXPORTER: unsupported exporter(s) {sorted(unknown)}; use otlp, console or none")
    if "otlp" in names:
        protocol = os.environ.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or os.environ.get("OTEL_EXPORTER_OTLP_PROTOCOL") or "http/protobuf"
        if protocol != "http/protobuf":
            raise TracingConfigError(f"OTLP protocol {protocol!r} is not installed; use http/protobuf")
    return names


def _processors(names: list[str]) -> list:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter

    processors = []
    for name in names:
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            processors.append(BatchSpanProcessor(OTLPSpanExporter()))
        else:
            processors.append(BatchSpanProcessor(ConsoleSpanExporter()))
    return processors


def init_tracing(service_name: str, span_processor=None) -> None:
    """Install a TracerProvider when an exporter is configured (or a processor is given)."""
    global _provider_set
    with _lock:
        if _provider_set:
            return
        processors = [span_processor] if span_processor is not None else _processors(requested_exporters())
        if not processors:
            return
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider

        resource = Resource.create({"service.name": os.environ.get("OTEL_SERVICE_NAME", f"redfile-{service_name}")})
        provider = TracerProvider(resource=resource)
        for processor in processors:
            provider.add_span_processor(processor)
        trace.set_tracer_provider(provider)
        _provider_set = True


def tracing_on() -> bool:
    """Whether a tracer provider is installed in this process (by ``init_tracing`` or by a test)."""
    return _provider_set or hasattr(trace.get_tracer_provider(), "add_span_processor")


def instrument_app(app: Flask) -> None:
    """Flask spans for this app; Redis and outgoing requests spans once per process.

    Only when tracing is on: with no provider every span would be a no-op, yet
    the instrumentation would still wrap every request and Redis command
    (about a third of a small request's CPU).
    """
    global _libraries_instrumented
    if not tracing_on():
        return
    from opentelemetry.instrumentation.flask import FlaskInstrumentor

    FlaskInstrumentor().instrument_app(app, excluded_urls="healthz,readyz")
    with _lock:
        if not _libraries_instrumented:
            from opentelemetry.instrumentation.redis import RedisInstrumentor
            from opentelemetry.instrumentation.requests import RequestsInstrumentor

            RedisInstrumentor().instrument()
            RequestsInstrumentor().instrument()
            _libraries_instrumented = True
