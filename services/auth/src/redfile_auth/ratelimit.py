"""Failed-login limits per username and per client address, shared by all replicas.

Only failures count.  Once a username (or an address) has reached its limit
within the window, further attempts are refused with 429 and Retry-After
until the window, which starts at the first failure, has passed; the
password is then not even checked.  A successful login clears the
username's counter (not the address's: one good account must not unlock
guessing at others from the same address).

The counters live in Redis (see storage.py); if Redis is down, login fails
with 503 anyway, so the limiter fails closed.

Every refused attempt is a ``login_locked_out`` security event (a warning).
``failed`` tells which limits that very failure reached, so the caller can
write one ``login.locked_out`` audit entry per lockout rather than one per
refused attempt (a locked-out guesser cannot flood the audit trail).
"""

from __future__ import annotations

from redfile_common.errors import ApiError
from redfile_common.security_events import SecurityEvents

from .storage import AuthStore


class LoginLimiter:
    def __init__(
        self, store: AuthStore, *, per_user: int, per_ip: int, window: int, events: SecurityEvents | None = None
    ) -> None:
        self.store = store
        self.per_user = per_user
        self.per_ip = per_ip
        self.window = window
        self.events = events or SecurityEvents()

    def check(self, username: str | None, addr: str) -> None:
        """Raise 429 when the username or the address is locked out."""
        failures = self.store.failures(username, addr)
        locked = []
        if username and failures.user >= self.per_user:
            locked.append(("user", failures.user_ttl))
        if failures.ip >= self.per_ip:
            locked.append(("ip", failures.ip_ttl))
        if not locked:
            return
        retry_after = max(max(ttl for _, ttl in locked), 1)
        self.events.emit("login_locked_out", username=username, remote=addr, scope=",".join(s for s, _ in locked), retry_after=retry_after)
        raise ApiError("too_many_requests", headers={"Retry-After": str(retry_after)})

    def failed(self, username: str | None, addr: str) -> list[str]:
        """Count a failure; the limits (``user``, ``ip``) this failure has just reached."""
        user_count, ip_count = self.store.add_failure(username, addr, self.window)
        return [s for s, count, limit in (("user", user_count, self.per_user), ("ip", ip_count, self.per_ip)) if count == limit]

    def succeeded(self, username: str) -> None:
        self.store.clear_user_failures(username)
