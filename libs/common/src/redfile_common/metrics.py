"""Prometheus metrics through prometheus-flask-exporter.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its
samples to that directory and the master serves the merged view on a port of
its own (``METRICS_PORT``), never through the public routes.  Requests are
grouped by URL rule, so a file id never becomes a label value.  Outside
gunicorn (tests, ``flask run``) each app gets a private registry.

The request metrics are ``redfile_http_request_duration_seconds`` (histogram),
``redfile_http_request_total`` and ``redfile_http_request_exceptions_total``
(counters), all labelled method, status, url_rule and service: url_rule is the
route template (``/files/<file_id>``), or ``<unmatched>`` (as in the request log) for a path or method no
route takes.  They are this module's own hooks, not the exporter's defaults, so
that every request counts once in each, including one refused by a hook before
its route runs (a body that is not JSON, a GET with a body): the exporter
starts its clock in a ``before_request`` hook such a refusal skips.  The app factory builds the
service's own metrics (``product_metrics``) on the same registry, and the
master adds the Redis INFO gauges (``redis_info``) to what it serves.
"""

from __future__ import annotations

import os
import time

import structlog
from flask import Flask, g, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_flask_exporter import PrometheusMetrics

from .logs import route_template

EXCLUDED = ["/healthz", "/readyz"]
LABELS = ("method", "status", "url_rule", "service")

log = structlog.get_logger("redfile.metrics")


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def new_registry() -> CollectorRegistry:
    """The app's registry.  Under gunicorn its values live in the multiprocess files anyway."""
    return CollectorRegistry() if multiprocess_dir() else CollectorRegistry(auto_describe=True)


def init_metrics(app: Flask, service: str, registry: CollectorRegistry | None = None):
    labels = {"service": service}
    registry = registry if registry is not None else new_registry()
    if multiprocess_dir():
        from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

        metrics = GunicornPrometheusMetrics(app, registry=registry, default_labels=labels, excluded_paths=EXCLUDED, export_defaults=False)
    else:
        metrics = PrometheusMetrics(
            app, path=None, registry=registry, default_labels=labels, excluded_paths=EXCLUDED, export_defaults=False
        )
    app.extensions["redfile_metrics"] = metrics
    _count_requests(app, service, registry)
    return metrics


def _count_requests(app: Flask, service: str, registry: CollectorRegistry) -> None:
    duration = Histogram("redfile_http_request_duration_seconds", "HTTP request duration in seconds", LABELS, registry=registry)
    total = Counter("redfile_http_request_total", "HTTP requests", LABELS, registry=registry)
    exceptions = Counter(
        "redfile_http_request_exceptions_total", "HTTP requests that raised an unexpected exception", LABELS, registry=registry
    )

    def labels(status: int) -> dict[str, str]:
        # the template without converter names: /files/<file:file_id> is /files/<file_id>, as dashboards name it
        return {"method": request.method, "status": str(status), "url_rule": route_template(), "service": service}

    def start() -> None:
        g.metrics_started = time.perf_counter()

    def finish(response):
        if request.path not in EXCLUDED and not g.get("metrics_counted"):
            g.metrics_counted = True
            values = labels(response.status_code)
            total.labels(**values).inc()
            duration.labels(**values).observe(max(time.perf_counter() - g.get("metrics_started", time.perf_counter()), 0.0))
            if g.get("unhandled_error"):  # set by the shared handler of unexpected exceptions
                exceptions.labels(**values).inc()
        return response

    def teardown(exc: BaseException | None) -> None:
        if exc is not None and request.path not in EXCLUDED and not g.get("unhandled_error"):
            exceptions.labels(**labels(500)).inc()

    # the clock starts before every other hook, so a request one of them refuses is timed too
    app.before_request_funcs.setdefault(None, []).insert(0, start)
    app.after_request(finish)
    app.teardown_request(teardown)


def master_registry(service: str, settings=None) -> CollectorRegistry:
    """What the gunicorn master serves: every worker's samples, plus Redis INFO when settings allow."""
    from prometheus_client.multiprocess import MultiProcessCollector

    from .redis_info import RedisInfo, RedisInfoCollector, info_client

    registry = CollectorRegistry()
    MultiProcessCollector(registry)
    if settings is not None:
        info = RedisInfo(info_client(settings), ttl=settings.redis_info_ttl)
        registry.register(RedisInfoCollector(info, service))
    return registry


def start_metrics_server(port: int, host: str, service: str):
    """From gunicorn's ``when_ready``: serve ``/metrics`` (and the liveness ``/healthz``) from the master on ``host:port``."""
    from prometheus_client import make_wsgi_app

    from .liveness import start_server
    from .settings import ServiceSettings, SettingsError, load_settings

    try:
        settings = load_settings(ServiceSettings, {"service_name": service})
    except SettingsError as exc:
        # The workers will refuse to start with the same message; the metrics port still answers.
        log.error("metrics_without_redis_info", reason=str(exc))
        settings = None
    return start_server(port, host, make_wsgi_app(master_registry(service, settings)))
