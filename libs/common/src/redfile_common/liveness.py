"""``/healthz`` served by the gunicorn master, beside ``/metrics`` on ``METRICS_PORT``: liveness that never queues.

A request thread that waits on a hung Redis cannot answer anything, and a ``/healthz`` behind it
on the main port waits too.  The master's metrics server runs in a thread of its own, touches
neither Redis nor the workers' threads, and answers ``/healthz`` at once: the process is alive
(gunicorn's master restarts a worker that dies or stops its heartbeat, and a worker with a request
stuck past ``WORKER_STUCK_AFTER`` exits to be restarted: ``gunicorn_worker``).  The chart's liveness
probe calls it there, so a Redis freeze takes pods out of the Service (``/readyz`` fails) but never
restarts them.  ``/healthz`` on the main port stays, for ``make run``, the README and the startup probe.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterable
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

ALIVE = b'{"status": "ok"}'

WsgiApp = Callable[[dict, Callable], Iterable[bytes]]


class _Server(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class _Quiet(WSGIRequestHandler):
    def log_message(self, format, *args) -> None:
        """No line per probe: the probes come every few seconds."""


def with_liveness(app: WsgiApp) -> WsgiApp:
    """``app``, with ``GET /healthz`` answered before it is asked."""

    def serve(environ: dict, start_response: Callable) -> Iterable[bytes]:
        if environ.get("PATH_INFO") == "/healthz":
            start_response(
                "200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(ALIVE))), ("Cache-Control", "no-store")]
            )
            return [ALIVE]
        return app(environ, start_response)

    return serve


def start_server(port: int, host: str, app: WsgiApp) -> tuple[WSGIServer, threading.Thread]:
    """Serve ``app`` with ``/healthz`` from a daemon thread (a thread per connection)."""

    class Server(_Server):
        address_family = socket.AF_INET6 if ":" in host else socket.AF_INET

    httpd = make_server(host, port, with_liveness(app), Server, handler_class=_Quiet)
    thread = threading.Thread(target=httpd.serve_forever, name="redfile-metrics", daemon=True)
    thread.start()
    return httpd, thread
