"""Gunicorn configuration shared by every service.

    gunicorn -c python:redfile_common.gunicorn_conf 'redfile_files:create_app()'

Read from the environment: SERVICE_NAME, BIND (or PORT), WEB_CONCURRENCY
(workers), GUNICORN_THREADS, GUNICORN_TIMEOUT, GUNICORN_GRACEFUL_TIMEOUT,
GUNICORN_REUSE_PORT, WORKER_STUCK_AFTER, LOG_LEVEL, PROMETHEUS_MULTIPROC_DIR,
METRICS_HOST and METRICS_PORT.
"""

from __future__ import annotations

import glob
import os
import socket
import sys

from gunicorn.glogging import Logger

from redfile_common.logs import logging_dict_config
from redfile_common.request_watch import WatchSettings
from redfile_common.tracing import init_tracing

_service = os.environ.get("SERVICE_NAME", "redfile")

bind = os.environ.get("BIND") or f"0.0.0.0:{os.environ.get('PORT', '8000')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
# gthread, with a stop that cuts stalled clients instead of waiting for the master's SIGKILL (gunicorn_worker.py).
worker_class = "redfile_common.gunicorn_worker.ThreadWorker"
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# A worker with a request stuck in the app this long (no read from or write to its client) exits and is replaced.
_watch = WatchSettings.from_env(dict(os.environ), _service)
graceful_timeout = int(os.environ.get("GUNICORN_GRACEFUL_TIMEOUT", "20"))
keepalive = 5
# Each worker listens on a socket of its own (SO_REUSEPORT), and the kernel hashes new connections
# over them.  On one shared socket a burst of keep-alive connections (a proxy's pool, a mesh
# sidecar's few upstream connections, a load generator) could all be accepted by one worker and
# leave the others idle: half the throughput of two workers (docs/performance.md).
# GUNICORN_REUSE_PORT=0 keeps one shared socket; ``on_starting`` keeps it off where it cannot help.
reuse_port = os.environ.get("GUNICORN_REUSE_PORT", "1").strip().lower() not in ("0", "false", "no", "off")
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None
proc_name = f"redfile-{_service}"
# gunicorn >= 25 opens a control socket at one fixed path per user; several
# masters on one machine (make run, the e2e suite) would steal it from each other.
control_socket_disable = True
accesslog = None
logconfig_dict = logging_dict_config(_service, os.environ.get("LOG_LEVEL", "INFO"))


class NoAccessLog(Logger):
    """The apps log each request themselves (one JSON line, redfile_common.logs).

    With ``logconfig_dict`` set, gunicorn builds its own access line for every
    request and hands it to a logger that drops it: 5 % of a small request's
    CPU time (docs/performance.md).  This skips building it.
    """

    def access(self, resp, req, environ, request_time):
        return None

    def info(self, msg, *args, **kwargs):
        # With a socket per worker (SO_REUSEPORT) the master holds none, and gunicorn's start-up line
        # would read "Listening at:  (pid)": name the addresses the workers listen on.
        if msg.startswith("Listening at:") and args and not args[0] and self.cfg.reuse_port:
            args = (",".join(f"http://{host}:{port}" for host, port in self.cfg.address), *args[1:])
        super().info(msg, *args, **kwargs)


logger_class = NoAccessLog
# Limits on the request line and headers: a hostile client gets a 400, not a worker.
limit_request_line = 8190
limit_request_fields = 100
limit_request_field_size = 8190


def on_starting(server):
    mp_dir = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if mp_dir:
        os.makedirs(mp_dir, exist_ok=True)
        for stale in glob.glob(os.path.join(mp_dir, "*.db")):
            os.remove(stale)
    _settle_reuse_port(server)


def _settle_reuse_port(server) -> None:
    """Before any socket exists: a socket per worker only with two workers or more on TCP addresses (one worker
    gains nothing and would leave the port without a listener while it restarts; a Unix socket cannot be shared),
    and then an address already taken stops the start, as it does on one socket, instead of being shared with
    whatever holds it or failing worker by worker."""
    cfg = server.cfg
    if not cfg.reuse_port:
        return
    if cfg.workers < 2 or not all(isinstance(address, tuple) for address in cfg.address):
        cfg.set("reuse_port", False)
        return
    for host, port in cfg.address:
        probe = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM)
        try:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as gunicorn binds: TIME_WAIT is no conflict
            probe.bind((host, port))
        except OSError as exc:
            server.log.error("Connection in use: %s (%s)", (host, port), exc)
            sys.exit(1)
        finally:
            probe.close()
    server.log.info("Each worker listens on its own socket (SO_REUSEPORT): %s", ", ".join(f"{h}:{p}" for h, p in cfg.address))


def when_ready(server):
    port = int(os.environ.get("METRICS_PORT", "0") or 0)
    if port and os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from redfile_common.metrics import start_metrics_server

        # The workers' merged samples plus Redis INFO, read here at scrape time, never in a worker.
        start_metrics_server(port, os.environ.get("METRICS_HOST", "127.0.0.1"), _service)


def post_fork(server, worker):
    worker.watch_settings = _watch
    # The span processor's export thread must belong to the worker, not the master.
    init_tracing(_service)


def child_exit(server, worker):
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_flask_exporter.multiprocess import GunicornPrometheusMetrics

        GunicornPrometheusMetrics.mark_process_dead_on_child_exit(worker.pid)
