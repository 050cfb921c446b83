"""A time budget per request: how long it may wait on Redis and on other services, all told.

Each request starts with ``REQUEST_BUDGET`` seconds; one that carries a body (a chunk, a tus PATCH)
gets ``Content-Length / WRITE_BUDGET_RATE`` more, granted (``grant_body``) only once the length is
known to be within the largest body its route takes (``error_handlers.refuse_oversized_bodies``): a
length claimed past it is refused with a 413 and gets nothing.  Once a streamed answer (a download, a zip) has
begun, each of its reads may wait ``REQUEST_BUDGET`` and none longer, however long the stream.  Every Redis command (``redis_client``) and every service-to-service call
(``service_client``) takes the budget that is left as its timeout.  What is spent is waiting: a
service call's whole time, a Redis command's whole time when it fails, and when Redis answers only
the time beyond what a healthy Redis takes (``redis_client.HUNG_AFTER``).  Time spent reading a
slow client's body is not: the budget bounds the waiting on what may hang.  A job that must wait
longer on another service says so (``at_least``).

When nothing is left a Redis command is not sent at all: ``DeadlineExceeded``, a
``redis.exceptions.TimeoutError``, so it is the 503 ``service_unavailable`` with ``Retry-After``
that every Redis timeout is (``error_handlers``), and code that fails open on a Redis error fails
open on it too.  Outside a request (the sweeper, the command line) there is no budget and each
command has its configured socket timeout.

The budget lives in a ``contextvars.ContextVar``: gunicorn's threads each serve one request at a time,
and a streamed body is iterated in the thread (and context) that served its request.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Iterator
from contextvars import ContextVar

import redis

_current: ContextVar[Budget | None] = ContextVar("redfile_budget", default=None)


class DeadlineExceeded(redis.exceptions.TimeoutError):
    """The request's budget is spent: the command was not sent."""


class Budget:
    """Seconds of waiting left to one request; ``spend`` what a wait took.

    A ``renewing`` budget (a streamed answer's) is never spent: each wait may take all of it.
    """

    def __init__(self, seconds: float, *, renewing: bool = False, body_rate: float | None = None) -> None:
        self._left = seconds
        self.renewing = renewing
        self.body_rate = body_rate  # bytes of request body per second of budget (``grant_body``)
        self._lock = threading.Lock()  # a request's own threads (a zip, a fan-out) may share it

    def left(self) -> float:
        return self._left

    def spend(self, seconds: float) -> None:
        if self.renewing:
            return
        with self._lock:
            self._left -= seconds

    def grant(self, seconds: float) -> None:
        with self._lock:
            self._left += seconds


def begin(seconds: float, *, body_rate: float | None = None) -> Budget:
    """The current context's budget from now on (a request's start)."""
    budget = Budget(seconds, body_rate=body_rate)
    _current.set(budget)
    return budget


def end() -> None:
    _current.set(None)


def current() -> Budget | None:
    return _current.get()


def timeout(configured: float) -> float:
    """What a wait may take now: ``configured``, or less when the request has less left.

    ``DeadlineExceeded`` when the request has nothing left.
    """
    budget = _current.get()
    if budget is None:
        return configured
    left = budget.left()
    if left <= 0:
        raise DeadlineExceeded("the request's time budget is spent")
    return min(configured, left)


def check() -> None:
    """``DeadlineExceeded`` when the current request has nothing left (a command not worth taking a connection for)."""
    budget = _current.get()
    if budget is not None and budget.left() <= 0:
        raise DeadlineExceeded("the request's time budget is spent")


def spend(seconds: float) -> None:
    budget = _current.get()
    if budget is not None:
        budget.spend(seconds)


def at_least(seconds: float) -> None:
    """Let the current request wait ``seconds`` more if it has less left (a long call it knows it makes)."""
    budget = _current.get()
    if budget is not None and budget.left() < seconds:
        budget.grant(seconds - budget.left())


def grant_body(length: int) -> None:
    """Give the current request ``length / body_rate`` seconds more for a body of ``length`` bytes it takes."""
    budget = _current.get()
    if budget is not None and budget.body_rate and length > 0:
        budget.grant(length / budget.body_rate)


@contextlib.contextmanager
def floor(seconds: float) -> Iterator[None]:
    """Within the block the current request may wait ``seconds`` even when its budget has less (or nothing) left.

    For a write that must not be lost for want of time (an audit entry of an action that happened).  What
    the block waits is spent from the request's budget too, so nothing after it gains time.  Outside a
    request: no-op.
    """
    outer = _current.get()
    if outer is None:
        yield
        return
    own = Budget(max(outer.left(), seconds))
    start = own.left()
    token = _current.set(own)
    try:
        yield
    finally:
        _current.reset(token)
        outer.spend(start - own.left())


def carried(fn):
    """``fn`` to run in another thread with the caller's budget (``executor.submit(carried(fn), ...)``)."""
    return _Carried(contextvars.copy_context(), fn)


class _Carried:
    """A copy of the caller's context per ``carried`` (per submit): one context cannot be entered by two threads at once."""

    def __init__(self, context: contextvars.Context, fn) -> None:
        self.context = context
        self.fn = fn

    def __call__(self, *args, **kwargs):
        return self.context.run(self.fn, *args, **kwargs)


class Waiting:
    """``with Waiting():`` spends the time of the block from the current budget."""

    def __enter__(self) -> Waiting:
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc) -> None:
        spend(time.monotonic() - self._started)


def init_deadlines(app, *, budget: float, write_rate: float) -> None:
    """Give every request of ``app`` its budget; a streamed answer gets a renewing one, kept until it is sent.

    A body's share is granted later, by ``error_handlers.refuse_oversized_bodies`` (``grant_body``).
    """
    from flask import g

    def _begin() -> None:
        begin(budget, body_rate=write_rate)

    def _stream(response):
        if response.is_streamed:
            # a download (or a zip) may stream for hours: each of its reads may wait the whole budget, no more
            _current.set(Budget(budget, renewing=True))
            g.redfile_budget_streams = True
            response.call_on_close(end)
        return response

    def _end(exc) -> None:
        if not g.get("redfile_budget_streams"):
            end()

    app.before_request_funcs.setdefault(None, []).insert(0, _begin)
    app.after_request(_stream)
    app.teardown_request(_end)
