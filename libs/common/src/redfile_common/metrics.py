"""Prometheus metrics through prometheus-flask-exporter.

Under gunicorn (``PROMETHEUS_MULTIPROC_DIR`` set) every worker writes its
samples to that directory and the master serves the merged view on a port of
its own (``METRICS_PORT``), never through the public routes.  Requests are
grouped by URL rule, so a file id never becomes a label value.  Outside
gunicorn (tests, ``flask run``) each app gets a private registry.
"""

from __future__ import annotations

import os

from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_flask_exporter import PrometheusMetrics

EXCLUDED = ["/healthz", "/readyz"]


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def init_metrics(app: Flask, service: str):
    labels = {"service": service}
    if multiprocess_dir():
        from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

        metrics = GunicornPrometheusMetrics(
            app, group_by="url_rule", default_labels=labels, excluded_paths=EXCLUDED, defaults_prefix="redfile"
        )
    else:
        metrics = PrometheusMetrics(
            app,
            path=None,
            registry=CollectorRegistry(auto_describe=True),
            group_by="url_rule",
            default_labels=labels,
            excluded_paths=EXCLUDED,
            defaults_prefix="redfile",
        )
    app.extensions["redfile_metrics"] = metrics
    return metrics
