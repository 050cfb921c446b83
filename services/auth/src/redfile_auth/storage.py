"""Redis storage of the auth service: the only module of auth that talks to Redis.

Its keys and their hash tags are named in ``keys``.  It also writes ``rf:tokstate:{<username>}``
(user slot) in the same MULTI as the user change, ``rf:tokdeny:<jti>`` through the shared ``TokenState`` (see redfile_common.tokens), and
``rf:tokdeny:family:{<family>}`` (family slot) in the same step as a family's revocation
(``rotate_refresh`` on reuse, ``revoke_family``), so the family's access tokens end with it.

Contract (no command, MULTI or script touches two slots; the steps across slots are ordered so
that a crash between two leaves a state the next operation repairs, docs/architecture.md):
* ``create_user`` writes nothing in the user slot and returns None when the name is taken
  (WATCH/MULTI); the name is indexed first (``auth:users``), the record second.
* ``update_user`` and ``delete_user`` change the record, the token version and the user's
  families index in one MULTI (user slot), so no session outlives the change; the families'
  own keys go after (a family left by a crash fails its next rotation on the version check).
  ``delete_user`` unindexes the name after the MULTI.
* ``rotate_refresh`` is one Lua script in the family slot (lua/rotate_refresh.lua): the presented
  token is marked used and its successor written, or, when it was already used, the whole family
  is revoked; the user's families index follows.
* Failure mode: Redis errors are not caught here.  They reach the shared error
  handler (503), so login and its rate limiting fail closed: no Redis, no login.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

import redis
from redis.cluster import RedisCluster

from redfile_auth.keys import (
    FAMILY,
    FAMILY_SEPARATOR,
    REFRESH,
    USER,
    USER_FAMILIES,
    USERS,
    families_key,
    family_key,
    login_scopes,
    refresh_family,
    refresh_key,
    user_key,
)
from redfile_common.lua_scripts import Scripts
from redfile_common.redis_client import transaction
from redfile_common.tokens import FAMILY_MARK, LEEWAY_SECONDS, Claims, TokenState

__all__ = ["FAMILY", "REFRESH", "USER", "USER_FAMILIES", "AuthStore", "Rotation", "UserRecord", "login_scopes", "refresh_family"]


@dataclass(frozen=True)
class UserRecord:
    username: str
    role: str
    active: bool
    created_at: str
    updated_at: str
    password_hash: str = field(repr=False)
    id: str = ""  # immutable; empty only on a record stored before ids existed (``AuthStore.ensure_id`` gives one)

    def to_redis(self) -> dict[str, str]:
        return {
            "id": self.id,
            "username": self.username,
            "password_hash": self.password_hash,
            "role": self.role,
            "active": "1" if self.active else "0",
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }

    @classmethod
    def from_redis(cls, raw: dict[str, str]) -> UserRecord | None:
        if not raw:
            return None
        return cls(
            username=raw["username"],
            role=raw.get("role", "user"),
            active=raw.get("active") == "1",
            created_at=raw.get("created_at", ""),
            updated_at=raw.get("updated_at", ""),
            password_hash=raw.get("password_hash", ""),
            id=raw.get("id", ""),
        )

    def public(self) -> dict:
        return {
            "id": self.id,
            "username": self.username,
            "role": self.role,
            "active": self.active,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Rotation:
    status: str  # "ok", "reuse", "revoked" (family gone) or "invalid"
    version: str | None = None


def _str(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _text(raw: dict) -> dict[str, str]:
    return {_str(k): _str(v) for k, v in raw.items()}


class AuthStore:
    def __init__(self, client: redis.Redis, token_state: TokenState) -> None:
        self.redis = client
        self.token_state = token_state
        self._scripts = Scripts(client, "redfile_auth")
        # a refresh token issued before tokens named their family is stored outside its family's slot
        self.legacy_refresh = not isinstance(client, RedisCluster)

    # -- users ---------------------------------------------------------------
    def create_user(self, record: UserRecord) -> str | None:
        """Store a new user and give it a token version; None if the name is taken."""
        key = user_key(record.username)
        self.redis.zadd(USERS, {record.username: 0})  # first: a name indexed without a record is skipped by readers

        def txn(pipe) -> str | None:
            if pipe.exists(key):
                return None
            pipe.multi()
            pipe.hset(key, mapping=record.to_redis())
            return self.token_state.bump(record.username, pipe)

        return transaction(self.redis, txn, key)

    def get_user(self, username: str) -> UserRecord | None:
        return UserRecord.from_redis(_text(self.redis.hgetall(user_key(username))))

    def ensure_id(self, record: UserRecord) -> UserRecord:
        """The record with its immutable id, giving one to a record stored before ids existed (the first one given stays)."""
        if record.id:
            return record
        key = user_key(record.username)

        def txn(pipe) -> str:
            if not pipe.exists(key):
                return ""  # deleted meanwhile
            uid = pipe.hget(key, "id")
            if uid:
                return _str(uid)
            uid = secrets.token_hex(16)
            pipe.multi()
            pipe.hset(key, "id", uid)
            return uid

        return replace(record, id=transaction(self.redis, txn, key))

    def user_and_version(self, username: str) -> tuple[UserRecord | None, str | None]:
        """The record and the current token version, read in one MULTI (a consistent pair: one slot)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(user_key(username))
            pipe.get(TokenState.version_key(username))
            raw, version = pipe.execute()
        return UserRecord.from_redis(_text(raw)), version.decode() if version is not None else None

    def count_users(self) -> int:
        return int(self.redis.zcard(USERS))

    def list_users(self, after: str | None, limit: int) -> tuple[list[UserRecord], bool]:
        """Up to ``limit`` users with names after ``after``; and whether more follow."""
        names = self.redis.zrangebylex(USERS, f"({after}" if after else "-", "+", start=0, num=limit + 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names[:limit]:
                pipe.hgetall(user_key(_str(name)))
            raws = pipe.execute()
        records = [r for r in (UserRecord.from_redis(_text(raw)) for raw in raws) if r is not None]
        return records, len(names) > limit

    def update_user(self, username: str, updates: dict[str, str], now: str) -> tuple[UserRecord, str | None] | None:
        """Apply the fields of ``updates`` that differ from the stored ones.

        When anything changed: bump the token version and drop the user's families index in
        the same MULTI, then end those families.  Returns (record, new version or None when
        nothing changed), or None when there is no such user.
        """
        key, index = user_key(username), families_key(username)
        ended: list[str] = []

        def txn(pipe):
            current = _text(pipe.hgetall(key))
            if not current:
                return None
            diff = {k: v for k, v in updates.items() if current.get(k) != v}
            if not diff:
                return UserRecord.from_redis(current), None
            ended[:] = [_str(f) for f in pipe.smembers(index)]
            diff["updated_at"] = now
            pipe.multi()
            pipe.hset(key, mapping=diff)
            version = self.token_state.bump(username, pipe)
            pipe.delete(index)
            return UserRecord.from_redis({**current, **diff}), version

        result = transaction(self.redis, txn, key, index)
        if result is not None and result[1] is not None:
            self._end_families(ended)
        return result

    def replace_password_hash(self, username: str, old_hash: str, new_hash: str) -> bool:
        """Swap in a rehash of the same password, unless the hash changed meanwhile."""
        key = user_key(username)

        def txn(pipe) -> bool:
            if pipe.hget(key, "password_hash") != old_hash.encode():
                return False
            pipe.multi()
            pipe.hset(key, "password_hash", new_hash)
            return True

        return transaction(self.redis, txn, key)

    def delete_user(self, username: str) -> bool:
        """Remove the user, its token version and its refresh families; False if absent.

        The name leaves the index after the record, also when the record is already gone
        (a deletion that stopped between the two is finished by the next one)."""
        key, index = user_key(username), families_key(username)
        ended: list[str] = []

        def txn(pipe) -> bool:
            if not pipe.exists(key):
                return False
            ended[:] = [_str(f) for f in pipe.smembers(index)]
            pipe.multi()
            pipe.delete(key, index)
            self.token_state.forget(username, pipe)
            return True

        deleted = transaction(self.redis, txn, key, index)
        self.redis.zrem(USERS, username)
        self._end_families(ended)
        return deleted

    def _end_families(self, families: list[str]) -> None:
        """Delete the families' keys, each in its own slot (their access tokens already fail on the version)."""
        if families:
            with self.redis.pipeline(transaction=False) as pipe:
                for family in families:
                    pipe.delete(family_key(family))
                pipe.execute()

    # -- access tokens -------------------------------------------------------
    def new_version(self, username: str) -> str:
        return self.token_state.bump(username)

    def deny(self, claims: Claims) -> None:
        self.token_state.deny(claims)

    # -- refresh tokens ------------------------------------------------------
    @staticmethod
    def new_family() -> str:
        """A new refresh family's id: known before its first access token is minted (claim ``fam``)."""
        return FAMILY_MARK + secrets.token_urlsafe(16)

    @staticmethod
    def new_refresh_token(family: str) -> str:
        """A refresh token of ``family``: the family, then 256 random bits."""
        return f"{family}{FAMILY_SEPARATOR}{secrets.token_urlsafe(32)}"

    def start_family(self, family: str, username: str, token_hash: str, version: str, ttl: int, now: str) -> str:
        """Open the refresh family ``family`` (``new_family``) for a login with its first token; returns its id.

        The user's families index first (user slot), the family and its token second (family
        slot): a crash between leaves an id in the index with no family, which revoking skips."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.sadd(families_key(username), family)
            pipe.expire(families_key(username), ttl)
            pipe.execute()
        token = refresh_key(token_hash, family)
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(family_key(family), mapping={"username": username, "created_at": now})
            pipe.expire(family_key(family), ttl)
            pipe.hset(token, mapping={"username": username, "family": family, "version": version, "used": "0"})
            pipe.expire(token, ttl)
            pipe.execute()
        return family

    def peek_refresh(self, token_hash: str, family: str | None) -> tuple[str, str] | None:
        """(username, family) of a stored refresh token, used or not; ``family``: the one the token names."""
        if family is None and not self.legacy_refresh:
            return None
        username, stored = self.redis.hmget(refresh_key(token_hash, family), "username", "family")
        if username is None or stored is None or (family is not None and _str(stored) != family):
            return None
        return _str(username), _str(stored)

    def rotate_refresh(
        self, old_hash: str, new_hash: str, username: str, family: str, ttl: int, access_ttl: int, *, legacy: bool = False
    ) -> Rotation:
        """``access_ttl``: on reuse the family's access tokens are denied that long (``TokenState.deny_family``).

        ``legacy``: the presented token is one issued before tokens named their family (single Redis only).
        The family slot's script first, the user's families index after."""
        old = refresh_key(old_hash, None if legacy else family)
        keys = [old, refresh_key(new_hash, family), family_key(family), self.token_state.family_deny_key(family)]
        result = self._scripts["rotate_refresh"](keys=keys, args=[username, family, ttl, access_ttl + LEEWAY_SECONDS])
        status = result[0].decode()
        if status == "ok":
            self.redis.expire(families_key(username), ttl)
        elif status == "reuse":
            self.redis.srem(families_key(username), family)
        return Rotation(status, result[1].decode() if len(result) > 1 else None)

    def revoke_family(self, username: str, family: str, access_ttl: int) -> None:
        """End the family: its refresh tokens, and its access tokens for the ``access_ttl`` they can live.

        The family slot first (the family and its denial in one MULTI), the user's index after."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(family_key(family))
            self.token_state.deny_family(family, access_ttl, pipe)
            pipe.execute()
        self.redis.srem(families_key(username), family)
