"""A limit on failed checks (passwords), exact under concurrency and shared by every replica.

Only failures count.  An attempt concerns one or more scopes (for a login: the username and
the client address; for a share link: the link), each a failure counter with its own limit
and a set of checks in flight.  Once a scope's failures reach its limit within the window,
which starts at its first failure, every attempt that concerns it is refused until the
window ends: the secret is then not even checked.

A check first takes a place in each of its scopes (``begin``) and gives it up after, as a
failure or not (``failed`` / ``succeeded`` / ``abandon``); a check starts only while every
scope's failures plus checks in flight are below its limit.  So at most the limit's worth
of wrong secrets is ever checked per window, however many guesses arrive at once.  A check
that finds the places taken by checks in flight (not by failures) waits for one, up to
``wait`` seconds, then is refused with Retry-After 1.  A place is held at most ``hold``
seconds, so a worker that dies mid-check cannot keep it.  Redis's clock (``TIME``) dates
the places; Redis's TTLs end the windows.

All keys of one attempt must be in one Redis slot if the service runs on Redis Cluster.
Redis errors are not caught: the check fails closed (503).
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass

import redis

from .errors import ApiError
from .lua_scripts import Scripts

DEFAULT_HOLD = 60
DEFAULT_WAIT = 2.0


@dataclass(frozen=True)
class Scope:
    """One failure counter an attempt concerns: its name (for the caller), its two keys and its limit."""

    name: str
    failures_key: str
    checks_key: str
    limit: int


@dataclass(frozen=True)
class Attempt:
    """One admitted check: its places must be given up by ``failed``, ``succeeded`` or ``abandon``."""

    id: str
    scopes: tuple[Scope, ...]


class Refused(ApiError):
    """429 ``too_many_requests``: ``locked`` names the scopes at their limit; none when the places were busy."""

    def __init__(self, locked: tuple[str, ...], retry_after: int) -> None:
        super().__init__("too_many_requests", headers={"Retry-After": str(retry_after)})
        self.locked = locked
        self.retry_after = retry_after

    @property
    def busy(self) -> bool:
        return not self.locked


class FailureLimiter:
    def __init__(self, client: redis.Redis, *, window: int, hold: int = DEFAULT_HOLD, wait: float = DEFAULT_WAIT) -> None:
        self.window = window
        self.hold = hold
        self.wait = wait
        self._scripts = Scripts(client, "redfile_common")

    def begin(self, scopes: Sequence[Scope]) -> Attempt:
        """Take a place in every scope for one check, or raise ``Refused``."""
        if not scopes:
            raise ValueError("an attempt concerns at least one scope")
        attempt = Attempt(secrets.token_hex(8), tuple(scopes))
        deadline = time.monotonic() + self.wait
        while True:
            reply = self._scripts["limiter_begin"](keys=_keys(attempt.scopes), args=[attempt.id, self.hold, *(s.limit for s in scopes)])
            verdict = reply[0].decode()
            if verdict == "ok":
                return attempt
            if verdict == "locked":
                raise Refused(tuple(scopes[int(i) - 1].name for i in reply[2:]), max(int(reply[1]), 1))
            if time.monotonic() >= deadline:
                raise Refused((), 1)
            time.sleep(random.uniform(0.01, 0.05))

    def failed(self, attempt: Attempt) -> list[str]:
        """Count the attempt as a failure in each scope; the scopes whose limit this very failure reached."""
        counts = self._end(attempt, failed=True)
        return [s.name for s, n in zip(attempt.scopes, counts, strict=True) if n == s.limit]

    def succeeded(self, attempt: Attempt, *, forget: Collection[str] = ()) -> None:
        """The secret was right: give the places up; the scopes named in ``forget`` lose their failures."""
        self._end(attempt, failed=False, forget=forget)

    def abandon(self, attempt: Attempt) -> None:
        """The check ended without a verdict (an error): give the places up, count nothing."""
        self._end(attempt, failed=False)

    def _end(self, attempt: Attempt, *, failed: bool, forget: Collection[str] = ()) -> list[int]:
        flags = ["1" if s.name in forget else "0" for s in attempt.scopes]
        args = [attempt.id, "1" if failed else "0", self.window, *flags]
        return [int(n) for n in self._scripts["limiter_end"](keys=_keys(attempt.scopes), args=args)]


def _keys(scopes: Sequence[Scope]) -> list[str]:
    return [key for s in scopes for key in (s.failures_key, s.checks_key)]
