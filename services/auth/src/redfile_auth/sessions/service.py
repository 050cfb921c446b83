"""Sessions: login, refresh-token rotation, logout and password change (no Flask here).

A session is an access token (a short-lived JWT every service checks against
the user's token version) plus an opaque refresh token.  Each login opens a
refresh *family*; every refresh uses up the presented token and hands out
its successor in the same family.  A used token presented again means it
was stolen (or the client is broken): the whole family is revoked, and with
it every access token minted from it (they carry the family, claim ``fam``,
and every service's token check reads the family's denial).  Logout with the
refresh token ends its family the same way.

Wrong username, wrong password and disabled account all answer the same 401
after the same amount of work, and only the username reaches the log.

Observed: logins and refreshes are counted by result (``AuthMetrics``); login
failures, lockouts, refresh-token reuse and a foreign refresh token at logout
are security events (warnings); logins, failed logins of existing accounts,
lockouts, logouts, refresh-token reuse and password changes go to the audit
trail.  A name that is not an account is never logged or audited (the entry
says ``<unknown>``): it may be a password typed into the wrong box.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from redfile_auth.accounts.service import utc_now
from redfile_auth.passwords import Passwords
from redfile_auth.sessions.limits import LoginLimits
from redfile_auth.storage import AuthStore, UserRecord, refresh_family
from redfile_auth.validation import is_valid_username, normalise_username, require_password
from redfile_common.audit import NullAuditLog
from redfile_common.errors import ApiError
from redfile_common.limiter import Refused
from redfile_common.product_metrics import AuthMetrics
from redfile_common.security_events import SecurityEvents
from redfile_common.tokens import Claims, UserTokens

USER_SCOPES = ("files:read", "files:write")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"

    def to_dict(self) -> dict:
        return {
            "access_token": self.access_token,
            "refresh_token": self.refresh_token,
            "token_type": self.token_type,
            "expires_in": self.expires_in,
        }


def token_hash(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


def scopes_for(role: str) -> list[str]:
    return [*USER_SCOPES, *(["admin"] if role == "admin" else [])]


class Sessions:
    def __init__(
        self,
        store: AuthStore,
        passwords: Passwords,
        limits: LoginLimits,
        user_tokens: UserTokens,
        *,
        access_ttl: int,
        refresh_ttl: int,
        metrics: AuthMetrics | None = None,
        events: SecurityEvents | None = None,
        audit=None,
    ) -> None:
        self.store = store
        self.passwords = passwords
        self.limits = limits
        self.user_tokens = user_tokens
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl
        self.metrics = metrics or AuthMetrics.null()
        self.events = events or SecurityEvents()
        self.audit = audit or NullAuditLog()

    def login(self, username: str, password: str, addr: str) -> TokenPair:
        name = normalise_username(username)
        known_name = name if is_valid_username(name) else None
        try:
            attempt = self.limits.begin(known_name, addr)
        except Refused:
            self.metrics.login("locked_out")
            raise
        try:
            record, version = self.store.user_and_version(known_name) if known_name else (None, None)
            verdict = self.passwords.verify(record.password_hash if record else None, password)
        except BaseException:
            self.limits.abandon(attempt)
            raise
        if not (verdict.ok and record and record.active):
            reached = self.limits.failed(attempt)
            self.metrics.login("failure")
            # Name only accounts that exist: an unknown "username" may be a password typed in the wrong box.
            account = record.username if record else None
            reason = "bad_password" if record and not verdict.ok else ("disabled" if record else "unknown_user")
            self.events.emit("login_failed", username=account or "<unknown>", remote=addr, reason=reason)
            # Audited whether or not the account exists, so both failures cost the same time.
            self.audit.record("login.failed", actor=account or "<unknown>", user=account, outcome="failure", reason=reason)
            if reached:
                self.audit.record("login.locked_out", actor=account or "<unknown>", user=account, outcome="denied", scope=",".join(reached))
            raise ApiError("invalid_credentials")
        self.limits.succeeded(attempt)
        if verdict.needs_rehash:
            self.store.replace_password_hash(record.username, record.password_hash, self.passwords.hash(password))
        pair = self._issue(record, version or self.store.new_version(record.username))
        self.metrics.login("success")
        self.audit.record("login.succeeded", actor=record.username, user=record.username, role=record.role)
        return pair

    def refresh(self, refresh_token: str) -> TokenPair:
        old_hash, named = token_hash(refresh_token), refresh_family(refresh_token)
        owner = self.store.peek_refresh(old_hash, named)
        if owner is None:
            self.metrics.refresh("invalid")
            raise ApiError("invalid_token")
        username, family = owner
        new_token = self.store.new_refresh_token(family)
        rotation = self.store.rotate_refresh(
            old_hash, token_hash(new_token), username, family, self.refresh_ttl, self.access_ttl, legacy=named is None
        )
        if rotation.status == "reuse":
            self.metrics.refresh("reuse")
            self.events.emit("refresh_token_reuse", username=username, family=family)
            self.audit.record("token.refresh_reused", actor=username, user=username, outcome="denied", family=family)
        if rotation.status != "ok":
            if rotation.status != "reuse":
                self.metrics.refresh("invalid")
            raise ApiError("invalid_token")
        record, version = self.store.user_and_version(username)
        if record is None or not record.active or version is None or version != rotation.version:
            # The user changed (or went) since this family was issued: end it.
            self.store.revoke_family(username, family, self.access_ttl)
            self.metrics.refresh("invalid")
            raise ApiError("invalid_token")
        access, _ = self._mint_access(record, version, family)
        self.metrics.refresh("success")
        return TokenPair(access, new_token, self.access_ttl)

    def logout(self, claims: Claims, refresh_token: str | None) -> None:
        """End this access token and, if given and the user's own, its refresh family."""
        self.store.deny(claims)
        ended = self._end_family(claims, refresh_token)
        self.audit.record("logout", actor=claims.sub, user=claims.sub, refresh_family_ended=ended)

    def _end_family(self, claims: Claims, refresh_token: str | None) -> bool:
        if not refresh_token:
            return False
        owner = self.store.peek_refresh(token_hash(refresh_token), refresh_family(refresh_token))
        if owner is None:
            return False
        username, family = owner
        if username != claims.sub:
            self.events.emit("permission_denied", username=claims.sub, action="logout_foreign_refresh_token")
            return False
        self.store.revoke_family(username, family, self.access_ttl)
        return True

    def change_password(self, username: str, current: str, new: str, addr: str) -> TokenPair:
        """Check the current password, set the new one and end every session; a fresh pair."""
        require_password(new, "new_password")
        attempt = self.limits.begin(username, addr)
        try:
            record = self.store.get_user(username)
            verdict = self.passwords.verify(record.password_hash if record else None, current)
        except BaseException:
            self.limits.abandon(attempt)
            raise
        if not (verdict.ok and record and record.active):
            self.limits.failed(attempt)
            self.events.emit("login_failed", username=username, remote=addr, action="password_change")
            self.audit.record("password.changed", actor=username, user=username, outcome="failure", reason="wrong_current_password")
            raise ApiError("invalid_credentials", "The current password is wrong.")
        self.limits.succeeded(attempt)
        result = self.store.update_user(username, {"password_hash": self.passwords.hash(new)}, utc_now())
        record, version = result or (None, None)
        if record is None or version is None:
            raise ApiError("user_not_found")
        self.audit.record("password.changed", actor=username, user=username, other_sessions_ended=True)
        return self._issue(record, version)

    # -- helpers ---------------------------------------------------------------
    def _mint_access(self, record: UserRecord, version: str, family: str) -> tuple[str, Claims]:
        record = self.store.ensure_id(record)  # the token names the account (uid), not only its name
        return self.user_tokens.mint(
            username=record.username,
            role=record.role,
            scopes=scopes_for(record.role),
            version=version,
            ttl=self.access_ttl,
            family=family,
            uid=record.id,
        )

    def _issue(self, record: UserRecord, version: str) -> TokenPair:
        family = self.store.new_family()
        access, _ = self._mint_access(record, version, family)
        refresh = self.store.new_refresh_token(family)
        self.store.start_family(family, record.username, token_hash(refresh), version, self.refresh_ttl, utc_now())
        return TokenPair(access, refresh, self.access_ttl)
