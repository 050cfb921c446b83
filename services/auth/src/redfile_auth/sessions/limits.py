"""Failed-login limits (``redfile_common.limiter``): a stranger's guesses never lock the owner out.

* per (username, client) -- ``LOGIN_MAX_FAILURES_PER_CLIENT``: that client is refused (429,
  Retry-After) for that username until the window ends;
* per client -- ``LOGIN_MAX_FAILURES_PER_IP``: that client is refused for every username;
* per username, over all clients -- ``LOGIN_MAX_FAILURES_PER_USER``: a ceiling that never
  locks.  Past it, a client that fails waits before its next check of the username (1 s,
  doubling with each failure past the ceiling, at most ``LOGIN_SLOWDOWN_MAX``); a client that
  has not failed logs in at once.

The client is ``limiter.client_id`` of the request's address (an IPv6 /64 counts as one).  The
right password forgets that client's failures on the username and ends its wait, not the
username's or the address's: one good account must not unlock guessing at others from the
same address.  Without Redis, login fails with 503, so the limits fail closed.

Every refused attempt is a ``login_locked_out`` security event (a warning; ``scope`` names the
limits, ``slowed`` says the client is waiting out its delay).  ``failed`` names the limits that
very failure reached, so the caller writes one ``login.locked_out`` audit entry per lockout
(``user``: the username reached its ceiling) rather than one per refused attempt.
"""

from __future__ import annotations

from redfile_auth.storage import login_scopes
from redfile_common.limiter import Attempt, FailureLimiter, Refused, client_id
from redfile_common.security_events import SecurityEvents


class LoginLimits:
    def __init__(
        self, limiter: FailureLimiter, *, per_client: int, per_user: int, per_ip: int, events: SecurityEvents | None = None
    ) -> None:
        self.limiter = limiter
        self.per_client = per_client
        self.per_user = per_user
        self.per_ip = per_ip
        self.events = events or SecurityEvents()

    def begin(self, username: str | None, addr: str) -> Attempt:
        """Admit one password check of ``username`` (None: not a possible name) from ``addr``, or raise 429."""
        scopes, cooldown = login_scopes(username, client_id(addr), per_client=self.per_client, per_user=self.per_user, per_ip=self.per_ip)
        try:
            return self.limiter.begin(scopes, cooldown=cooldown)
        except Refused as refused:
            scope = ",".join(refused.locked) if refused.locked else "busy"
            self.events.emit(
                "login_locked_out", username=username, remote=addr, scope=scope, slowed=refused.slowed, retry_after=refused.retry_after
            )
            raise

    def failed(self, attempt: Attempt) -> list[str]:
        """Count a wrong password; the limits (``user``, ``client``, ``ip``) this failure has just reached."""
        return self.limiter.failed(attempt)

    def succeeded(self, attempt: Attempt) -> None:
        """The right password: this client's failures on the username are forgotten, and its wait ends."""
        self.limiter.succeeded(attempt, forget={"client"})

    def abandon(self, attempt: Attempt) -> None:
        """The check ended without a verdict (an error): nothing is counted."""
        self.limiter.abandon(attempt)
