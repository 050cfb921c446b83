"""A limit on failed checks (passwords), exact under concurrency and shared by every replica.

Only failures count.  An attempt concerns one or more scopes (for a login: the username, the
(username, client) pair and the client; for a share link: the link and the (link, client)
pair), each a failure counter with its own limit and a set of checks in flight.  A scope
either *locks* or *slows*:

* a locking scope (a client's own): once its failures reach its limit within the window,
  which starts at its first failure, every attempt that concerns it is refused until the
  window ends: the secret is then not even checked.
* a slowing scope (the target everybody shares: a username, a link) never refuses by
  itself, so that nobody can lock the owner out.  Past its ceiling (``limit``), each failure
  makes the failing client wait before its next check on the target -- 1 s, 2 s, 4 s, ...
  doubling with every failure past the ceiling, at most ``max_delay`` -- in the attempt's
  ``cooldown`` key (one per client and target).  A client that has not failed (or has
  waited) is admitted at once; the right secret ends its wait.

A check first takes a place in each of its locking scopes (``begin``; slowing scopes hold
no places, and their ``checks_key`` stays unwritten) and gives it up after, as a failure or
not (``failed`` / ``succeeded`` / ``abandon``); a check starts only while every locking
scope's failures plus checks in flight are below its limit.  So at most the limit's worth of
wrong secrets is ever checked per window and client, however many guesses arrive at once.
A check that finds the places taken by checks in flight (not by failures) waits for one, up
to ``wait`` seconds, then is refused with Retry-After 1.  A place is held at most ``hold``
seconds, so a worker that dies mid-check cannot keep it.  Redis's clock (``TIME``) dates
the places; Redis's TTLs end the windows.

All keys of one attempt must be in one Redis slot if the service runs on Redis Cluster.
Redis errors are not caught: the check fails closed (503).
"""

from __future__ import annotations

import hashlib
import ipaddress
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
DEFAULT_MAX_DELAY = 60


@dataclass(frozen=True)
class Scope:
    """One failure counter an attempt concerns: its name (for the caller), its two keys and its limit.

    ``slows``: the scope never refuses; ``limit`` is its ceiling, past which a failing client waits.
    """

    name: str
    failures_key: str
    checks_key: str
    limit: int
    slows: bool = False


@dataclass(frozen=True)
class Attempt:
    """One admitted check: its places must be given up by ``failed``, ``succeeded`` or ``abandon``."""

    id: str
    scopes: tuple[Scope, ...]
    cooldown: str | None = None


class Refused(ApiError):
    """429 ``too_many_requests``: ``locked`` names the scopes at their limit (``slowed``: the slowing scopes
    past their ceiling, the client waiting out its delay); none when the places were busy."""

    def __init__(self, locked: tuple[str, ...], retry_after: int, *, slowed: bool = False) -> None:
        super().__init__("too_many_requests", headers={"Retry-After": str(retry_after)})
        self.locked = locked
        self.retry_after = retry_after
        self.slowed = slowed

    @property
    def busy(self) -> bool:
        return not self.locked


class FailureLimiter:
    def __init__(
        self, client: redis.Redis, *, window: int, hold: int = DEFAULT_HOLD, wait: float = DEFAULT_WAIT, max_delay: int = DEFAULT_MAX_DELAY
    ) -> None:
        self.window = window
        self.hold = hold
        self.wait = wait
        self.max_delay = max_delay
        self._scripts = Scripts(client, "redfile_common")

    def begin(self, scopes: Sequence[Scope], *, cooldown: str | None = None) -> Attempt:
        """Take a place in every locking scope for one check, or raise ``Refused``.

        ``cooldown``: the key of this client's wait on the target (needed by slowing scopes; its
        slot must be theirs).
        """
        if not scopes:
            raise ValueError("an attempt concerns at least one scope")
        attempt = Attempt(secrets.token_hex(8), tuple(scopes), cooldown)
        deadline = time.monotonic() + self.wait
        args = [attempt.id, self.hold, *(s.limit for s in scopes), *_kinds(scopes)]
        while True:
            reply = self._scripts["limiter_begin"](keys=_keys(attempt), args=args)
            verdict = reply[0].decode()
            if verdict == "ok":
                return attempt
            if verdict in ("locked", "slowed"):
                names = tuple(scopes[int(i) - 1].name for i in reply[2:])
                raise Refused(names, max(int(reply[1]), 1), slowed=verdict == "slowed")
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
        scopes = attempt.scopes
        flags = ["1" if s.name in forget else "0" for s in scopes]
        args = [attempt.id, "1" if failed else "0", self.window, self.max_delay, *flags, *(s.limit for s in scopes), *_kinds(scopes)]
        return [int(n) for n in self._scripts["limiter_end"](keys=_keys(attempt), args=args)]


def client_id(addr: str | None) -> str:
    """The client a failure is counted against: its IPv4 address, or its IPv6 /64 (one host's usual share).

    ``addr`` is the request's remote address (``X-Forwarded-For`` only behind ``TRUSTED_PROXY_HOPS``);
    anything that is not an address is counted under a digest of it, never as free text in a key.
    """
    try:
        ip = ipaddress.ip_address((addr or "").strip())
    except ValueError:
        return "x-" + hashlib.sha256((addr or "").encode()).hexdigest()[:16]
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def _keys(attempt: Attempt) -> list[str]:
    keys = [key for s in attempt.scopes for key in (s.failures_key, s.checks_key)]
    return [*keys, attempt.cooldown] if attempt.cooldown else keys


def _kinds(scopes: Sequence[Scope]) -> list[str]:
    return ["slow" if s.slows else "lock" for s in scopes]
