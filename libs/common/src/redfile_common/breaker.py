"""A circuit breaker per process in front of Redis.

Closed, it lets every command through and counts consecutive failures (timeouts and connection
errors: what a hung or unreachable Redis gives).  ``BREAKER_FAILURES`` of them in a row open it:
then every command fails at once with ``BreakerOpen`` (a ``redis.exceptions.ConnectionError``, so
the 503 with ``Retry-After`` every Redis outage is) without touching a socket, and a request thread
is never parked on a Redis that does not answer.  ``BREAKER_RESET_TIMEOUT`` after it opened, the
next command is the single probe (half open): every other command still fails at once; the probe's
success closes the breaker, its failure opens it for another period.  A success in the closed state
resets the count.

Each change of state is counted and logged by the ``on_change(old, new)`` callback the app factory
gives (a gauge, a counter and a structlog event).

Why not pybreaker: its ``CircuitBreaker.call`` holds one lock for the whole guarded call
(danielfm/pybreaker#3; the changes to drop it, #40, #41, #57 and #77, were closed unmerged), so every
Redis command of a process would wait for the one before it; and ``circuitbreaker`` has no lock at
all and lets every caller through once its timeout passes (fabfuel/circuitbreaker#61), which is the
thundering probe this avoids.  The state machine here is a few lines under one lock that is never
held while a command runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import redis

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"
STATES = (CLOSED, OPEN, HALF_OPEN)


class BreakerOpen(redis.exceptions.ConnectionError):
    """Redis is taken to be down: the command was not sent."""

    def __init__(self, retry_after: float) -> None:
        super().__init__("the circuit breaker in front of Redis is open")
        self.retry_after = retry_after


class CircuitBreaker:
    def __init__(
        self,
        *,
        failures: int,
        reset_timeout: float,
        on_change: Callable[[str, str], None] | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.failures = failures
        self.reset_timeout = reset_timeout
        self.on_change = on_change
        self.clock = clock
        self._lock = threading.Lock()
        self._state = CLOSED
        self._count = 0
        self._opened_at = 0.0
        self._probing = False

    @property
    def state(self) -> str:
        return self._state

    def retry_after(self) -> float:
        """Seconds until the breaker lets a probe through (0 when closed)."""
        if self._state == CLOSED:
            return 0.0
        return max(0.0, self._opened_at + self.reset_timeout - self.clock())

    def before(self) -> bool:
        """May a command go now?  ``BreakerOpen`` if not; True when this command is the probe."""
        if self._state == CLOSED:  # the common case takes no lock
            return False
        with self._lock:
            if self._state == CLOSED:
                return False
            if self._probing or self.clock() < self._opened_at + self.reset_timeout:
                raise BreakerOpen(self.retry_after() or self.reset_timeout)
            self._probing = True
            change = self._set(HALF_OPEN)
        self._announce(change)
        return True

    def check(self, probe: bool) -> None:
        """A command still under way (a staged write, sent piece by piece): ``BreakerOpen`` once the breaker has
        opened since it began, unless it is the probe."""
        if self._state != CLOSED and not probe:
            raise BreakerOpen(self.retry_after() or self.reset_timeout)

    def succeeded(self, probe: bool) -> None:
        if self._state == CLOSED and not probe:
            self._count = 0  # a stale count only ever delays the opening by a command
            return
        with self._lock:
            # the probe's answer, or one to a command sent before the breaker opened: Redis answers either way
            self._probing = False
            self._count = 0
            change = self._set(CLOSED)
        self._announce(change)

    def failed(self, probe: bool) -> None:
        with self._lock:
            if probe:
                self._probing = False
            self._count += 1
            change = None
            if probe or (self._state == CLOSED and self._count >= self.failures):
                self._opened_at = self.clock()
                change = self._set(OPEN)
        self._announce(change)

    def released(self, probe: bool) -> None:
        """A command that asked Redis nothing (no budget left, an error of its own): a probe's turn passes to the next."""
        if probe:
            with self._lock:
                self._probing = False

    def _set(self, state: str) -> tuple[str, str] | None:
        old, self._state = self._state, state
        return (old, state) if old != state else None

    def _announce(self, change: tuple[str, str] | None) -> None:
        if change is not None and self.on_change is not None:
            self.on_change(*change)
