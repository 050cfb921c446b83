"""Failed-login limits per username and per client address, shared by all replicas.

Only failures count.  Once a username (or an address) has reached its limit
within the window, further attempts are refused with 429 and Retry-After
until the window, which starts at the first failure, has passed; the
password is then not even checked.  A successful login clears the
username's counter (not the address's: one good account must not unlock
guessing at others from the same address).

The limit is exact under concurrency, on any number of replicas: a password
check first takes a place (``check``) and gives it up after (``failed`` /
``succeeded``), and a check starts only while failures plus checks in flight
are below the limit.  So at most the limit's worth of wrong passwords is ever
checked per window -- simultaneous guesses cannot all slip past a counter
that is still low.  A check that finds every place taken by checks in flight
(not by failures) waits for one, up to ``wait`` seconds (checks take
milliseconds), then gets 429 with Retry-After 1: right passwords arriving
together are served, not refused.  A place is held at most ``hold`` seconds,
so a worker that dies mid-check cannot keep it.

The counters live in Redis (see storage.py); if Redis is down, login fails
with 503 anyway, so the limiter fails closed.

Every refused attempt is a ``login_locked_out`` security event (a warning).
``failed`` tells which limits that very failure reached, so the caller can
write one ``login.locked_out`` audit entry per lockout rather than one per
refused attempt (a locked-out guesser cannot flood the audit trail).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass

from redfile_common.errors import ApiError
from redfile_common.security_events import SecurityEvents

from .storage import AuthStore


@dataclass(frozen=True)
class Attempt:
    """One admitted password check: its place must be given up by ``failed`` or ``succeeded``."""

    username: str | None
    addr: str
    id: str


class LoginLimiter:
    def __init__(
        self,
        store: AuthStore,
        *,
        per_user: int,
        per_ip: int,
        window: int,
        events: SecurityEvents | None = None,
        hold: int = 60,
        wait: float = 2.0,
    ) -> None:
        self.store = store
        self.per_user = per_user
        self.per_ip = per_ip
        self.window = window
        self.events = events or SecurityEvents()
        self.hold = hold
        self.wait = wait

    def check(self, username: str | None, addr: str) -> Attempt:
        """Admit one password check, or raise 429 when the username or the address is locked out."""
        deadline = time.monotonic() + self.wait
        while True:
            self._refuse_if_locked(username, addr, self.store.failures(username, addr))
            attempt = Attempt(username, addr, secrets.token_hex(8))
            admission = self.store.begin_check(username, addr, attempt.id, self.hold)
            self._refuse_if_locked(username, addr, admission.failures, attempt)
            f = admission.failures
            if (not username or f.user + admission.user_checking <= self.per_user) and f.ip + admission.ip_checking <= self.per_ip:
                return attempt
            # every place is taken by checks in flight: wait for one to end
            self.store.end_check(username, addr, attempt.id, failed=False, window=self.window)
            if time.monotonic() >= deadline:
                self.events.emit("login_locked_out", username=username, remote=addr, scope="busy", retry_after=1)
                raise ApiError("too_many_requests", headers={"Retry-After": "1"})
            time.sleep(random.uniform(0.01, 0.05))

    def _refuse_if_locked(self, username: str | None, addr: str, failures, attempt: Attempt | None = None) -> None:
        locked = []
        if username and failures.user >= self.per_user:
            locked.append(("user", failures.user_ttl))
        if failures.ip >= self.per_ip:
            locked.append(("ip", failures.ip_ttl))
        if not locked:
            return
        if attempt is not None:
            self.store.end_check(username, addr, attempt.id, failed=False, window=self.window)
        retry_after = max(max(ttl for _, ttl in locked), 1)
        self.events.emit("login_locked_out", username=username, remote=addr, scope=",".join(s for s, _ in locked), retry_after=retry_after)
        raise ApiError("too_many_requests", headers={"Retry-After": str(retry_after)})

    def failed(self, attempt: Attempt) -> list[str]:
        """Count the attempt as a failure; the limits (``user``, ``ip``) this failure has just reached."""
        user_count, ip_count = self.store.end_check(attempt.username, attempt.addr, attempt.id, failed=True, window=self.window)
        return [s for s, count, limit in (("user", user_count, self.per_user), ("ip", ip_count, self.per_ip)) if count == limit]

    def succeeded(self, attempt: Attempt, username: str) -> None:
        """The right password: the attempt's place is given up and ``username``'s failures are forgotten."""
        self.store.end_check(attempt.username, attempt.addr, attempt.id, failed=False, window=self.window)
        self.store.clear_user_failures(username)

    def abandon(self, attempt: Attempt) -> None:
        """The check ended without a verdict (an error): give its place up, count nothing."""
        self.store.end_check(attempt.username, attempt.addr, attempt.id, failed=False, window=self.window)
