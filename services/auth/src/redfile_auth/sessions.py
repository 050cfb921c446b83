"""Sessions: login, refresh-token rotation, logout and password change (no Flask here).

A session is an access token (a short-lived JWT every service checks against
the user's token version) plus an opaque refresh token.  Each login opens a
refresh *family*; every refresh uses up the presented token and hands out
its successor in the same family.  A used token presented again means it
was stolen (or the client is broken): the whole family is revoked.

Wrong username, wrong password and disabled account all answer the same 401
after the same amount of work, and only the username reaches the log.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass

import structlog

from redfile_common.errors import ApiError
from redfile_common.tokens import Claims, UserTokens

from .passwords import Passwords
from .ratelimit import LoginLimiter
from .storage import AuthStore, UserRecord
from .users import utc_now
from .validation import is_valid_username, normalise_username, require_password

log = structlog.get_logger("redfile.auth")

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
        limiter: LoginLimiter,
        user_tokens: UserTokens,
        *,
        access_ttl: int,
        refresh_ttl: int,
    ) -> None:
        self.store = store
        self.passwords = passwords
        self.limiter = limiter
        self.user_tokens = user_tokens
        self.access_ttl = access_ttl
        self.refresh_ttl = refresh_ttl

    def login(self, username: str, password: str, addr: str) -> TokenPair:
        name = normalise_username(username)
        known_name = name if is_valid_username(name) else None
        self.limiter.check(known_name, addr)
        record, version = self.store.user_and_version(known_name) if known_name else (None, None)
        verdict = self.passwords.verify(record.password_hash if record else None, password)
        if not (verdict.ok and record and record.active):
            self.limiter.failed(known_name, addr)
            # Name only accounts that exist: an unknown "username" may be a password typed in the wrong box.
            log.warning("login_failed", username=record.username if record else "<unknown>", remote=addr)
            raise ApiError("invalid_credentials")
        self.limiter.succeeded(record.username)
        if verdict.needs_rehash:
            self.store.replace_password_hash(record.username, record.password_hash, self.passwords.hash(password))
        return self._issue(record, version or self.store.new_version(record.username))

    def refresh(self, refresh_token: str) -> TokenPair:
        old_hash = token_hash(refresh_token)
        owner = self.store.peek_refresh(old_hash)
        if owner is None:
            raise ApiError("invalid_token")
        username, family = owner
        new_token = secrets.token_urlsafe(32)
        rotation = self.store.rotate_refresh(old_hash, token_hash(new_token), username, family, self.refresh_ttl)
        if rotation.status == "reuse":
            log.warning("refresh_token_reuse", username=username, family=family)
        if rotation.status != "ok":
            raise ApiError("invalid_token")
        record, version = self.store.user_and_version(username)
        if record is None or not record.active or version != rotation.version:
            # The user changed (or went) since this family was issued: end it.
            self.store.revoke_family(username, family)
            raise ApiError("invalid_token")
        access, _ = self._mint_access(record, version)
        return TokenPair(access, new_token, self.access_ttl)

    def logout(self, claims: Claims, refresh_token: str | None) -> None:
        """End this access token and, if given and the user's own, its refresh family."""
        self.store.deny(claims)
        if not refresh_token:
            return
        owner = self.store.peek_refresh(token_hash(refresh_token))
        if owner is None:
            return
        username, family = owner
        if username != claims.sub:
            log.warning("permission_denied", username=claims.sub, action="logout_foreign_refresh_token")
            return
        self.store.revoke_family(username, family)

    def change_password(self, username: str, current: str, new: str, addr: str) -> TokenPair:
        """Check the current password, set the new one and end every session; a fresh pair."""
        require_password(new, "new_password")
        self.limiter.check(username, addr)
        record = self.store.get_user(username)
        verdict = self.passwords.verify(record.password_hash if record else None, current)
        if not (verdict.ok and record and record.active):
            self.limiter.failed(username, addr)
            log.warning("login_failed", username=username, remote=addr, action="password_change")
            raise ApiError("invalid_credentials", "The current password is wrong.")
        self.limiter.succeeded(username)
        result = self.store.update_user(username, {"password_hash": self.passwords.hash(new)}, utc_now())
        if result is None or result[1] is None:
            raise ApiError("user_not_found")
        record, version = result
        return self._issue(record, version)

    # -- helpers ---------------------------------------------------------------
    def _mint_access(self, record: UserRecord, version: str) -> tuple[str, Claims]:
        return self.user_tokens.mint(
            username=record.username,
            role=record.role,
            scopes=scopes_for(record.role),
            version=version,
            ttl=self.access_ttl,
        )

    def _issue(self, record: UserRecord, version: str) -> TokenPair:
        access, _ = self._mint_access(record, version)
        refresh = secrets.token_urlsafe(32)
        self.store.start_family(record.username, token_hash(refresh), version, self.refresh_ttl, utc_now())
        return TokenPair(access, refresh, self.access_ttl)
