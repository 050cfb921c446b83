"""Which request threads of a worker are stuck: in the app, with no progress, for longer than a bound.

gunicorn's heartbeat watches a worker's main loop only, so a worker whose request threads are all
blocked for good (a deadlock, a C call that never returns, a Redis client stuck outside its
timeout) still looks alive.  The worker (``gunicorn_worker``) keeps a ``Watch`` per request thread
and asks ``stuck`` at each turn of its main loop; a request stuck past ``WORKER_STUCK_AFTER`` makes
it stop and exit, and the master starts a fresh one.

What counts as progress is a read from or a write to the request's client returning: the client's
socket is a ``WatchedSocket``, whose every ``recv``, ``send`` and ``sendfile`` marks its watch.
Time spent blocked in one of those is the client's, not the app's, and is never stuck: a 1 GiB
download to a slow client writes piece after piece (each write is progress), and a client that
stops reading its download or sending its upload holds a thread without making the worker exit (a
restart would not help: the client, not the worker, is what waits; the stop's cut deals with those).
So a streamed answer is watched like any other request, piece by piece: only the app's own time
between two pieces counts (each read of a stream has ``REQUEST_BUDGET`` on Redis at most).
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Iterable
from dataclasses import dataclass

from .logs import UNMATCHED, template

# How long a request may stay in the app without a read from or a write to its client (seconds):
# far above what any request waits (REQUEST_BUDGET, a chunk's share, a service call's SERVICE_TIMEOUT).
DEFAULT_STUCK_AFTER = 120.0
# The worker's exit status when it leaves stuck threads behind: not 3 or 4, which stop gunicorn's master.
EXIT_STUCK = os.EX_SOFTWARE


class Watch:
    """One request thread's progress, written by that thread and read by the worker's main loop."""

    __slots__ = ("conn", "environ", "since", "waiting")

    def __init__(self, conn, now: float | None = None) -> None:
        self.conn = conn
        self.environ: dict | None = None  # the request's, once the app has it
        self.since = time.monotonic() if now is None else now  # the last progress
        self.waiting = False  # blocked on the client

    def progress(self) -> None:
        self.waiting = False
        self.since = time.monotonic()

    def route(self) -> str:
        """The route template, as the request log and the metrics name it (never the path: it may hold a token)."""
        request = (self.environ or {}).get("werkzeug.request")
        rule = getattr(request, "url_rule", None)
        return template(rule.rule) if rule is not None else UNMATCHED

    def method(self) -> str:
        return str((self.environ or {}).get("REQUEST_METHOD", "-"))


def stuck(watches: Iterable[Watch], now: float, after: float) -> list[Watch]:
    """The watches whose thread has been in the app, not blocked on its client, for more than ``after`` seconds."""
    return [w for w in watches if not w.waiting and now - w.since > after]


def describe(watches: Iterable[Watch], now: float) -> list[dict]:
    return [{"method": w.method(), "route": w.route(), "seconds": round(now - w.since, 1)} for w in watches]


class WatchedSocket(socket.socket):
    """A client's socket whose reads and writes mark ``watch``: blocked on the client while in one, progress after."""

    watch: Watch | None = None

    def recv(self, *args):
        watch = self.watch
        if watch is None:
            return super().recv(*args)
        watch.waiting = True
        try:
            return super().recv(*args)
        finally:
            watch.progress()

    def recv_into(self, *args):
        watch = self.watch
        if watch is None:
            return super().recv_into(*args)
        watch.waiting = True
        try:
            return super().recv_into(*args)
        finally:
            watch.progress()

    def send(self, *args):
        watch = self.watch
        if watch is None:
            return super().send(*args)
        watch.waiting = True
        try:
            return super().send(*args)
        finally:
            watch.progress()

    def sendall(self, *args):
        watch = self.watch
        if watch is None:
            return super().sendall(*args)
        watch.waiting = True
        try:
            return super().sendall(*args)
        finally:
            watch.progress()

    def sendfile(self, *args, **kwargs):
        watch = self.watch
        if watch is None:
            return super().sendfile(*args, **kwargs)
        watch.waiting = True
        try:
            return super().sendfile(*args, **kwargs)
        finally:
            watch.progress()


def adopt(sock):
    """``sock`` as a ``WatchedSocket`` (the same connection); anything but a plain socket (TLS) is returned as it is."""
    if type(sock) is not socket.socket:
        return sock
    timeout = sock.gettimeout()
    watched = WatchedSocket(sock.family, sock.type, sock.proto, fileno=sock.detach())
    watched.settimeout(timeout)
    return watched


@dataclass(frozen=True)
class WatchSettings:
    """``WORKER_STUCK_AFTER`` seconds (0 turns the watch off), and the service the exit counter names."""

    stuck_after: float = DEFAULT_STUCK_AFTER
    service: str = "redfile"

    @classmethod
    def from_env(cls, environ: dict[str, str], service: str) -> WatchSettings:
        raw = environ.get("WORKER_STUCK_AFTER", "").strip()
        try:
            seconds = float(raw) if raw else DEFAULT_STUCK_AFTER
        except ValueError:
            raise ValueError("WORKER_STUCK_AFTER must be a number of seconds (0: off)") from None
        if not seconds >= 0:
            raise ValueError("WORKER_STUCK_AFTER must be a number of seconds (0: off)")
        return cls(stuck_after=seconds, service=service)


# The family the worker itself exports (beside the app's registry): name (without _total) -> type
FAMILIES = {"redfile_worker_stuck_exits": "counter"}


def exit_counter(service: str):
    """``redfile_worker_stuck_exits_total{service}``, at 0 from the start; written to the multiprocess files the master serves.

    None outside gunicorn's multiprocess metrics: a worker that exits takes a private registry with it.
    """
    from .metrics import multiprocess_dir

    if not multiprocess_dir():
        return None
    from prometheus_client import Counter

    counter = Counter(
        "redfile_worker_stuck_exits_total", "Workers that exited because a request was stuck in the app", ["service"], registry=None
    )
    return counter.labels(service=service)
