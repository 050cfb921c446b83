"""Failed-login limits per username and per client address (``redfile_common.limiter``).

Once a username (or an address) has reached its limit within the window, further attempts
are refused with 429 and Retry-After until the window ends; the password is then not even
checked.  A successful login clears the username's failures, not the address's: one good
account must not unlock guessing at others from the same address.  Without Redis, login
fails with 503, so the limit fails closed.

Every refused attempt is a ``login_locked_out`` security event (a warning).  ``failed``
names the limits that very failure reached, so the caller writes one ``login.locked_out``
audit entry per lockout rather than one per refused attempt.
"""

from __future__ import annotations

from redfile_auth.storage import login_scopes
from redfile_common.limiter import Attempt, FailureLimiter, Refused
from redfile_common.security_events import SecurityEvents


class LoginLimits:
    def __init__(self, limiter: FailureLimiter, *, per_user: int, per_ip: int, events: SecurityEvents | None = None) -> None:
        self.limiter = limiter
        self.per_user = per_user
        self.per_ip = per_ip
        self.events = events or SecurityEvents()

    def begin(self, username: str | None, addr: str) -> Attempt:
        """Admit one password check of ``username`` (None: not a possible name) from ``addr``, or raise 429."""
        try:
            return self.limiter.begin(login_scopes(username, addr, per_user=self.per_user, per_ip=self.per_ip))
        except Refused as refused:
            scope = ",".join(refused.locked) if refused.locked else "busy"
            self.events.emit("login_locked_out", username=username, remote=addr, scope=scope, retry_after=refused.retry_after)
            raise

    def failed(self, attempt: Attempt) -> list[str]:
        """Count a wrong password; the limits (``user``, ``ip``) this failure has just reached."""
        return self.limiter.failed(attempt)

    def succeeded(self, attempt: Attempt) -> None:
        """The right password: the username's failures are forgotten."""
        self.limiter.succeeded(attempt, forget={"user"})

    def abandon(self, attempt: Attempt) -> None:
        """The check ended without a verdict (an error): nothing is counted."""
        self.limiter.abandon(attempt)
