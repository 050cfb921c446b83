"""gunicorn's threaded worker, with a stop that never hangs.

gunicorn's ``gthread`` worker (27.0) runs each request in a thread of a
``ThreadPoolExecutor``.  Two things can hold a stopping gthread worker until
the master's SIGKILL at the end of its grace period ("Worker (pid:…) was sent
SIGKILL! Perhaps out of memory?"):

- Its quick stop (SIGINT, SIGQUIT) does its work inside the signal handler:
  ``ThreadPoolExecutor.shutdown``, then ``sys.exit``.  The first takes the
  pool's lock, which the interrupted main thread may already hold — inside
  ``submit`` (every new connection), or inside that same ``shutdown`` when a
  second signal comes, and Ctrl-C sends two: SIGINT from the terminal to
  every process, SIGQUIT from the master to its workers.  The lock is not
  reentrant: a deadlock (python/cpython#121649).  The second raises
  ``SystemExit`` wherever the main thread happens to be, even inside
  ``threading``'s own locks ("RuntimeError: release unlocked lock").  Here
  the handler only marks the stop and wakes the main loop, as gthread's
  graceful stop already does; the loop ends and the worker exits the normal
  way.
- The interpreter joins the pool's threads on exit, and a thread reading from
  a client that stalls (an upload paused mid-body, a connection opened with
  nothing sent yet) holds the exit until that client goes away.  This worker
  keeps the connections its threads are serving and ends them when it must
  stop: at once on SIGINT or SIGQUIT, kept-alive ones included; on SIGTERM
  (the graceful stop Kubernetes sends) only those still open ``STOP_MARGIN``
  seconds before the grace period (GUNICORN_GRACEFUL_TIMEOUT) ends, so the
  worker exits before the master's SIGKILL.  Each socket is shut down, so a
  blocked read or write returns; a connection a thread picks up after that is
  closed unanswered.

And a liveness probe never queues behind the request threads: a ``GET /healthz`` (what the first
bytes of a connection show, peeked without reading) is served by a thread of its own, so it answers
while every request thread waits on a hung Redis.  A new connection whose first bytes have
not arrived yet waits for them in the poller, as gthread's own deferred connections do, without a thread.

And a request stuck for good heals: each request thread's progress is watched (``request_watch``), and
when one has stayed in the app for ``WORKER_STUCK_AFTER`` seconds without a read from or a write to
its client, the worker logs ``worker_stuck`` (method, route template, seconds), counts it
(``redfile_worker_stuck_exits_total``), cuts the stuck connections and stops as on SIGTERM: the
others finish within the grace period, and the worker exits (status ``EXIT_STUCK``) without waiting
for the stuck threads, which the interpreter would wait for forever.  The master starts a fresh one.

Requests that finish in time are answered as by ``gthread``.  Once every
thread has ended, the worker logs "Worker stopped (pid: …)": gunicorn's own
"Worker exiting" comes before the threads are joined, so only this line tells
that a worker was not killed.  gunicorn has no hook for either fix
(``worker_int`` runs inside its quick-stop handler, and nothing runs between
the grace period and the SIGKILL), hence the subclass, which gunicorn's
``worker_class`` setting is made for; the shape it relies on is guarded in
tests/unit/deps/test_private_apis.py.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import selectors
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial

import structlog
from gunicorn.workers import gthread

from .request_watch import EXIT_STUCK, Watch, WatchedSocket, WatchSettings, adopt, describe, exit_counter, stuck

# Seconds before the end of the grace period at which requests still running are cut.
STOP_MARGIN = 2.0
# What a liveness probe's request starts with: served in the probe lane.
PROBES = (b"GET /healthz ", b"GET /healthz?")

log = structlog.get_logger("redfile.worker")


class ThreadWorker(gthread.ThreadWorker):
    alive: bool  # set by gunicorn's Worker, which has no annotations
    wsgi: Callable  # set by gunicorn's Worker.load_wsgi

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        # No lock guards these: the signal handler that reads them may interrupt the main thread anywhere, and a
        # set's add, discard and copy are each atomic under the GIL.  A thread adds its connection before it looks
        # at the flag, and the cut sets the flag before it copies the set, so no connection escapes both.
        self._serving: set = set()
        self._cutting = False
        # A watch per request thread (request_watch); gunicorn_conf's post_fork sets the settings from the environment.
        self.watch_settings = WatchSettings()
        self._watches: set[Watch] = set()
        self._stuck: list[Watch] = []
        self._stuck_exits = None

    def init_process(self):
        # The interpreter joins the pool's threads before it runs atexit functions: this one runs only once they end.
        atexit.register(self.log.info, "Worker stopped (pid: %s)", self.pid)
        self._probe_lane = ThreadPoolExecutor(max_workers=1, thread_name_prefix="redfile-probe")
        super().init_process()

    def load_wsgi(self):
        super().load_wsgi()
        if self.watch_settings.stuck_after > 0:
            self._stuck_exits = exit_counter(self.watch_settings.service)
            self.wsgi = _watched(self.wsgi)

    def enqueue_req(self, conn):
        # main thread: a new connection, one kept alive that turned readable, or one that waited for its first bytes
        first = _peek(conn)
        if first is None and not conn.initialized and not conn.data_ready and self.alive:
            # nothing sent yet: wait in the poller, as gthread does for a connection its thread deferred
            conn.sock.setblocking(False)
            conn.timeout = time.monotonic() + self.cfg.keepalive
            self.pending_conns.append(conn)
            self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_pending_socket_readable, conn))
            return
        if first is not None and first.startswith(PROBES):
            done = self._probe_lane.submit(self.handle, conn)
            done.add_done_callback(lambda fut: self.method_queue.defer(self.finish_request, conn, fut))
            return
        super().enqueue_req(conn)

    def handle(self, conn):
        watch = None
        if self.watch_settings.stuck_after > 0:
            if not conn.initialized:  # before gunicorn's parser takes the socket, and before a cut can see it
                conn.sock = adopt(conn.sock)
            if isinstance(conn.sock, WatchedSocket):
                watch = conn.sock.watch = Watch(conn)
                self._watches.add(watch)
        self._serving.add(conn)
        try:
            if self._cutting:
                _shut(conn)  # gthread closes it, and needs no linger for a socket already shut
                return False
            return super().handle(conn)
        finally:
            self._serving.discard(conn)
            if watch is not None:
                self._watches.discard(watch)

    def notify(self):
        # the main loop's heartbeat, at least once a second, also while the worker drains
        super().notify()
        if self.watch_settings.stuck_after > 0 and not self._stuck:
            now = time.monotonic()
            found = stuck(list(self._watches), now, self.watch_settings.stuck_after)
            if found:
                self.heal(found, now)

    def heal(self, found: list[Watch], now: float) -> None:
        """Stop for good, as on SIGTERM, with the stuck requests cut and written off (they would hold the drain)."""
        self._stuck = found
        log.error(
            "worker_stuck",
            pid=self.pid,
            stuck=describe(found, now),
            busy_threads=len(self._watches),
            threads=self.cfg.threads,
            stuck_after=self.watch_settings.stuck_after,
            action="exit",
        )
        if self._stuck_exits is not None:
            self._stuck_exits.inc()
        for watch in found:
            _shut(watch.conn)
        self.nr_conns -= len(found)
        if self.alive:
            self.handle_exit(None, None)

    def run(self):
        super().run()
        if any(watch in self._watches for watch in self._stuck):
            # the interpreter would join the stuck threads at exit, for ever: leave without them
            os._exit(EXIT_STUCK)

    def cut_connections(self) -> None:
        """End every connection a thread is serving or the poller keeps: a blocked read or write returns at once,
        and a kept-alive or waiting connection turns readable, reaches a thread and is closed there."""
        self._cutting = True
        for conn in [*self._serving, *self.keepalived_conns, *self.pending_conns]:
            _shut(conn)

    def handle_quit(self, sig, frame):
        # Not gthread's handler (see above): no lock, no exception; the loop in run() sees ``alive`` and stops.
        if self.alive:
            self.alive = False
            self.cfg.worker_int(self)
        self.cut_connections()
        self.method_queue.defer(lambda: None)

    def handle_exit(self, sig, frame):
        if self.alive:
            timer = threading.Timer(max(0.0, self.cfg.graceful_timeout - STOP_MARGIN), self.cut_connections)
            timer.daemon = True
            timer.start()
        super().handle_exit(sig, frame)


def _watched(app):
    """``app``, giving each request's watch its environ (the route the log names)."""

    def serve(environ, start_response):
        watch = getattr(environ.get("gunicorn.socket"), "watch", None)
        if watch is not None:
            watch.environ = environ
        return app(environ, start_response)

    return serve


def _peek(conn) -> bytes | None:
    """The first bytes waiting on the connection's socket, left there for the parser; None when none have come."""
    try:
        return conn.sock.recv(len(PROBES[0]), socket.MSG_PEEK | socket.MSG_DONTWAIT) or None
    except (OSError, ValueError):  # nothing yet, a socket gone (its thread finds out), TLS (no flags): the usual way
        return None


def _shut(conn) -> None:
    with contextlib.suppress(OSError):
        conn.sock.shutdown(socket.SHUT_RDWR)
