"""The auth domain, assembled from settings and the shared Redfile context (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass

from redfile_common.audit import AuditLog
from redfile_common.product_metrics import AuthMetrics
from redfile_common.security_events import SecurityEvents
from redfile_common.tokens import TokenState, UserTokens

from .bootstrap import bootstrap_admins
from .passwords import Passwords
from .ratelimit import LoginLimiter
from .sessions import Sessions
from .settings import AuthSettings
from .storage import AuthStore
from .users import Users


@dataclass
class AuthDomain:
    settings: AuthSettings
    users: Users
    sessions: Sessions
    store: AuthStore
    audit: AuditLog | None = None

    def bootstrap(self) -> bool:
        return bootstrap_admins(
            self.users, self.settings.admin_users, self.settings.admin_password, development=self.settings.development, audit=self.audit
        )

    def stats(self) -> dict:
        """What GET /internal/stats answers."""
        return {"users": self.store.count_users()}


def build_domain(
    settings: AuthSettings,
    redis_client,
    token_state: TokenState,
    user_tokens: UserTokens,
    *,
    metrics: AuthMetrics | None = None,
    events: SecurityEvents | None = None,
    audit=None,
) -> AuthDomain:
    """The auth domain; without metrics, events or audit it counts, warns (to the log) and audits nothing."""
    store = AuthStore(redis_client, token_state)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib, parallelism=settings.argon2_parallelism
    )
    limiter = LoginLimiter(
        store,
        per_user=settings.login_max_failures_per_user,
        per_ip=settings.login_max_failures_per_ip,
        window=settings.login_failure_window,
        events=events,
    )
    return AuthDomain(
        settings=settings,
        users=Users(store, passwords, settings.admin_users),
        sessions=Sessions(
            store,
            passwords,
            limiter,
            user_tokens,
            access_ttl=settings.access_token_ttl,
            refresh_ttl=settings.refresh_token_ttl,
            metrics=metrics,
            events=events,
            audit=audit,
        ),
        store=store,
        audit=audit,
    )
