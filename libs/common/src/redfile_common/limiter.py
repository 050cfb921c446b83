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

One script touches one scope (``lua/limiter_take.lua``, ``lua/limiter_give.lua``), so the
scopes of one attempt may live in different Redis Cluster slots; only a scope's own keys (and,
for a slowing scope, the attempt's cooldown key) must share one.  Each scope is exact on its
own: its count and its places change in one step.  Places are all or none: ``begin`` asks
every scope in turn and gives back the places it took when any scope refuses; meanwhile such a
place may make a concurrent check of that scope wait (``busy``), never admit one too many.
``failed`` counts the failure scope by scope, in the attempt's order: a worker that dies
between two scopes leaves the later ones' places held until their hold ends, uncounted.

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
        while True:
            replies = [self._take(attempt, scope) for scope in scopes]
            verdicts = [reply[0].decode() for reply in replies]
            if all(v == "ok" for v in verdicts):
                return attempt
            self._give_back(attempt, [s for s, v in zip(scopes, verdicts, strict=True) if v == "ok" and not s.slows])
            for refusal in ("locked", "slowed"):
                found = [(s.name, int(r[1])) for s, v, r in zip(scopes, verdicts, replies, strict=True) if v == refusal]
                if found:
                    raise Refused(tuple(n for n, _ in found), max(max(t for _, t in found), 1), slowed=refusal == "slowed")
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

    def _take(self, attempt: Attempt, scope: Scope) -> list:
        second = attempt.cooldown if scope.slows else scope.checks_key
        keys = [scope.failures_key, *([second] if second else [])]
        return self._scripts["limiter_take"](keys=keys, args=[attempt.id, self.hold, scope.limit, _kind(scope)])

    def _give_back(self, attempt: Attempt, taken: Sequence[Scope]) -> None:
        for scope in taken:
            self._give(attempt, scope, failed=False, forget=False, ends_wait=False)

    def _end(self, attempt: Attempt, *, failed: bool, forget: Collection[str] = ()) -> list[int]:
        ends_wait = bool(forget) and not failed
        return [self._give(attempt, s, failed=failed, forget=s.name in forget, ends_wait=ends_wait) for s in attempt.scopes]

    def _give(self, attempt: Attempt, scope: Scope, *, failed: bool, forget: bool, ends_wait: bool) -> int:
        keys = [scope.failures_key, scope.checks_key, *([attempt.cooldown] if scope.slows and attempt.cooldown else [])]
        args = [attempt.id, int(failed), self.window, self.max_delay, int(forget), scope.limit, _kind(scope), int(ends_wait)]
        return int(self._scripts["limiter_give"](keys=keys, args=args))


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


def _kind(scope: Scope) -> str:
    return "slow" if scope.slows else "lock"
