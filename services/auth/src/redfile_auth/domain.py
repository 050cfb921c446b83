"""The auth domain, assembled from settings and the shared Redfile context (no Flask here)."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from redfile_auth.accounts.bootstrap import bootstrap_admins
from redfile_auth.accounts.service import Users
from redfile_auth.migration import migrate
from redfile_auth.passwords import Passwords
from redfile_auth.sessions.limits import LoginLimits
from redfile_auth.sessions.service import Sessions
from redfile_auth.settings import AuthSettings
from redfile_auth.storage import AuthStore
from redfile_common.audit import AuditLog
from redfile_common.limiter import FailureLimiter
from redfile_common.product_metrics import AuthMetrics
from redfile_common.security_events import SecurityEvents
from redfile_common.tokens import TokenState, UserTokens


@dataclass
class AuthDomain:
    settings: AuthSettings
    users: Users
    sessions: Sessions
    store: AuthStore
    audit: AuditLog | None = None

    def bootstrap(self) -> bool:
        migrate(self.store.redis)  # keys of an earlier layout first: the admins below are looked up under the new names
        return bootstrap_admins(
            self.users, self.settings.admin_users, self.settings.admin_password, development=self.settings.development, audit=self.audit
        )

    def stats(self) -> dict:
        """What GET /internal/stats answers."""
        return {"users": self.store.count_users()}


def build_domain(
    settings: AuthSettings,
    redis_client: redis.Redis,
    token_state: TokenState,
    user_tokens: UserTokens,
    *,
    metrics: AuthMetrics | None = None,
    events: SecurityEvents | None = None,
    audit: AuditLog | None = None,
) -> AuthDomain:
    """The auth domain; without metrics, events or audit it counts, warns (to the log) and audits nothing."""
    store = AuthStore(redis_client, token_state)
    passwords = Passwords(
        time_cost=settings.argon2_time_cost, memory_kib=settings.argon2_memory_kib, parallelism=settings.argon2_parallelism
    )
    limits = LoginLimits(
        FailureLimiter(redis_client, window=settings.login_failure_window, max_delay=settings.login_slowdown_max),
        per_client=settings.login_max_failures_per_client,
        per_user=settings.login_max_failures_per_user,
        per_ip=settings.login_max_failures_per_ip,
        events=events,
    )
    return AuthDomain(
        settings=settings,
        users=Users(store, passwords, settings.admin_users),
        sessions=Sessions(
            store,
            passwords,
            limits,
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
