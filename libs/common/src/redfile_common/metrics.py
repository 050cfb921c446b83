"""Prometheus metrics through prometheus-flask-exporter.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its
samples to that directory and the master serves the merged view on a port of
its own (``METRICS_PORT``), never through the public routes.  Requests are
grouped by URL rule, so a file id never becomes a label value.  Outside
gunicorn (tests, ``flask run``) each app gets a private registry.

The request metrics are ``redfile_http_request_duration_seconds`` (histogram)
and ``redfile_http_request_total`` (counter), labelled method, status,
url_rule (the histogram only) and service.  The app factory builds the
service's own metrics (``product_metrics``) on the same registry, and the
master adds the Redis INFO gauges (``redis_info``) to what it serves.
"""

from __future__ import annotations

import os

import structlog
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics

EXCLUDED = ["/healthz", "/readyz"]

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

        metrics = GunicornPrometheusMetrics(
            app, registry=registry, group_by="url_rule", default_labels=labels, excluded_paths=EXCLUDED, defaults_prefix="redfile"
        )
    else:
        metrics = PrometheusMetrics(
            app,
            path=None,
            registry=registry,
            group_by="url_rule",
            default_labels=labels,
            excluded_paths=EXCLUDED,
            defaults_prefix="redfile",
        )
    app.extensions["redfile_metrics"] = metrics
    return metrics


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
