"""Redis storage of the auth service: the only module of auth that talks to Redis.

Key spaces (owner: auth; no hash tags: auth expects one Redis primary, not Redis Cluster):

``auth:user:{username}``            hash, no TTL: id (the account's immutable id: 128 random
                                    bits, hex, never reused; a re-created name gets a new one),
                                    username, password_hash, role ("admin"/"user"), active
                                    ("1"/"0"), created_at, updated_at
``auth:users``                      sorted set, no TTL: every username with score 0, so
                                    ZRANGEBYLEX lists them in name order for cursor paging
``auth:refresh:{sha256(token)}``    hash, TTL = REFRESH_TOKEN_TTL: username, family, version
                                    (token version when issued), used ("0"/"1").  Only the
                                    hash of a refresh token is stored; a used token stays
                                    until it expires so that its reuse can be detected
``auth:family:{family}``            hash, TTL = REFRESH_TOKEN_TTL, renewed by each rotation:
                                    username, created_at.  The family (one login's chain of
                                    refresh tokens) is alive while this key exists
``auth:user-families:{username}``   set, TTL = REFRESH_TOKEN_TTL, renewed by each login and
                                    rotation: the user's family ids, to revoke them all
``auth:ratelimit:user:{username}``  string counter, TTL = LOGIN_FAILURE_WINDOW from the first
``auth:ratelimit:pair:{username}:{client}``  failure: failed logins per username (all
``auth:ratelimit:ip:{client}``      clients), per username and client, per client
``auth:ratelimit:checking:pair:{username}:{client}``  sorted set, TTL = the hold (60 s),
``auth:ratelimit:checking:ip:{client}``  renewed: the password checks in flight (attempt id
                                    -> until when it holds its place, unix s)
``auth:ratelimit:wait:{username}:{client}``  string, TTL = the client's delay: past the
                                    username's ceiling, how long this client still waits.
                                    These are written by ``redfile_common.limiter``
                                    (``login_scopes``); ``{client}`` is ``limiter.client_id``

It also writes ``rf:tokstate:{username}`` and ``rf:tokdeny:{jti}`` through the shared
``TokenState`` (see redfile_common.tokens), in the same MULTI as the user change, and
``rf:tokdeny:family:{family}`` in the same step as a family's revocation (``rotate_refresh``
on reuse, ``revoke_family``), so the family's access tokens end with it.

Contract:
* ``create_user`` writes nothing and returns None when the name is taken (WATCH/MULTI).
* ``update_user`` and ``delete_user`` change the record, the token version and the
  user's refresh families in one MULTI, so no session outlives the change.
* ``rotate_refresh`` is one Lua script (lua/rotate_refresh.lua): the presented token is marked used and its
  successor written, or, when it was already used, the whole family is revoked.
* Failure mode: Redis errors are not caught here.  They reach the shared error
  handler (503), so login and its rate limiting fail closed: no Redis, no login.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace

import redis

from redfile_common.limiter import Scope
from redfile_common.lua_scripts import Scripts
from redfile_common.redis_client import transaction
from redfile_common.tokens import LEEWAY_SECONDS, Claims, TokenState

USER = "auth:user:"
USERS = "auth:users"
REFRESH = "auth:refresh:"
FAMILY = "auth:family:"
USER_FAMILIES = "auth:user-families:"
RATE_USER = "auth:ratelimit:user:"
RATE_PAIR = "auth:ratelimit:pair:"
RATE_IP = "auth:ratelimit:ip:"
CHECKING_USER = "auth:ratelimit:checking:user:"  # named for the limiter's layout; a slowing scope writes none
CHECKING_PAIR = "auth:ratelimit:checking:pair:"
CHECKING_IP = "auth:ratelimit:checking:ip:"
WAIT = "auth:ratelimit:wait:"


def login_scopes(username: str | None, client: str, *, per_client: int, per_user: int, per_ip: int) -> tuple[list[Scope], str | None]:
    """The failure limiter's scopes of one login, and the client's cooldown key on the username.

    The username (when it can be one) slows past ``per_user``; the (username, client) pair and the
    client lock at ``per_client`` and ``per_ip``.  ``client`` is ``limiter.client_id`` of the address.
    """
    ip = Scope("ip", RATE_IP + tag(client), CHECKING_IP + tag(client), per_ip)
    if not username:
        return [ip], None
    pair = tag(f"{username}:{client}")
    return [
        Scope("user", RATE_USER + tag(username), CHECKING_USER + tag(username), per_user, slows=True),
        Scope("client", RATE_PAIR + pair, CHECKING_PAIR + pair, per_client),
        ip,
    ], f"{WAIT}{tag(username)}:{client}"


def tag(value: str) -> str:
    """``value`` as a Redis Cluster hash tag: the keys that carry the same tag share one slot."""
    return "{" + value + "}"


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

    # -- users ---------------------------------------------------------------
    def create_user(self, record: UserRecord) -> str | None:
        """Store a new user and give it a token version; None if the name is taken."""
        key = USER + record.username

        def txn(pipe) -> str | None:
            if pipe.exists(key):
                return None
            pipe.multi()
            pipe.hset(key, mapping=record.to_redis())
            pipe.zadd(USERS, {record.username: 0})
            return self.token_state.bump(record.username, pipe)

        return transaction(self.redis, txn, key)

    def get_user(self, username: str) -> UserRecord | None:
        return UserRecord.from_redis(_text(self.redis.hgetall(USER + username)))

    def ensure_id(self, record: UserRecord) -> UserRecord:
        """The record with its immutable id, giving one to a record stored before ids existed (the first one given stays)."""
        if record.id:
            return record
        key = USER + record.username

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
        """The record and the current token version, read in one MULTI (a consistent pair)."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(USER + username)
            pipe.get(TokenState.VERSION_PREFIX + username)
            raw, version = pipe.execute()
        return UserRecord.from_redis(_text(raw)), version.decode() if version is not None else None

    def count_users(self) -> int:
        return int(self.redis.zcard(USERS))

    def list_users(self, after: str | None, limit: int) -> tuple[list[UserRecord], bool]:
        """Up to ``limit`` users with names after ``after``; and whether more follow."""
        names = self.redis.zrangebylex(USERS, f"({after}" if after else "-", "+", start=0, num=limit + 1)
        with self.redis.pipeline(transaction=False) as pipe:
            for name in names[:limit]:
                pipe.hgetall(USER + _str(name))
            raws = pipe.execute()
        records = [r for r in (UserRecord.from_redis(_text(raw)) for raw in raws) if r is not None]
        return records, len(names) > limit

    def update_user(self, username: str, updates: dict[str, str], now: str) -> tuple[UserRecord, str | None] | None:
        """Apply the fields of ``updates`` that differ from the stored ones.

        When anything changed: bump the token version and revoke every refresh
        family of the user in the same MULTI.  Returns (record, new version or
        None when nothing changed), or None when there is no such user.
        """
        key, families_key = USER + username, USER_FAMILIES + username

        def txn(pipe):
            current = _text(pipe.hgetall(key))
            if not current:
                return None
            diff = {k: v for k, v in updates.items() if current.get(k) != v}
            if not diff:
                return UserRecord.from_redis(current), None
            families = pipe.smembers(families_key)
            diff["updated_at"] = now
            pipe.multi()
            pipe.hset(key, mapping=diff)
            version = self.token_state.bump(username, pipe)
            self._revoke_all(pipe, username, families)
            return UserRecord.from_redis({**current, **diff}), version

        return transaction(self.redis, txn, key, families_key)

    def replace_password_hash(self, username: str, old_hash: str, new_hash: str) -> bool:
        """Swap in a rehash of the same password, unless the hash changed meanwhile."""
        key = USER + username

        def txn(pipe) -> bool:
            if pipe.hget(key, "password_hash") != old_hash.encode():
                return False
            pipe.multi()
            pipe.hset(key, "password_hash", new_hash)
            return True

        return transaction(self.redis, txn, key)

    def delete_user(self, username: str) -> bool:
        """Remove the user, its token version and its refresh families; False if absent."""
        key, families_key = USER + username, USER_FAMILIES + username

        def txn(pipe) -> bool:
            if not pipe.exists(key):
                return False
            families = pipe.smembers(families_key)
            pipe.multi()
            pipe.delete(key)
            pipe.zrem(USERS, username)
            self.token_state.forget(username, pipe)
            self._revoke_all(pipe, username, families)
            return True

        return transaction(self.redis, txn, key, families_key)

    @staticmethod
    def _revoke_all(pipe, username: str, families) -> None:
        pipe.delete(USER_FAMILIES + username, *(FAMILY + f.decode() for f in families))

    # -- access tokens -------------------------------------------------------
    def new_version(self, username: str) -> str:
        return self.token_state.bump(username)

    def deny(self, claims: Claims) -> None:
        self.token_state.deny(claims)

    # -- refresh tokens ------------------------------------------------------
    @staticmethod
    def new_family() -> str:
        """A new refresh family's id: known before its first access token is minted (claim ``fam``)."""
        return secrets.token_urlsafe(16)

    def start_family(self, family: str, username: str, token_hash: str, version: str, ttl: int, now: str) -> str:
        """Open the refresh family ``family`` (``new_family``) for a login with its first token; returns its id."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hset(FAMILY + family, mapping={"username": username, "created_at": now})
            pipe.expire(FAMILY + family, ttl)
            pipe.sadd(USER_FAMILIES + username, family)
            pipe.expire(USER_FAMILIES + username, ttl)
            pipe.hset(REFRESH + token_hash, mapping={"username": username, "family": family, "version": version, "used": "0"})
            pipe.expire(REFRESH + token_hash, ttl)
            pipe.execute()
        return family

    def peek_refresh(self, token_hash: str) -> tuple[str, str] | None:
        """(username, family) of a stored refresh token, used or not."""
        username, family = self.redis.hmget(REFRESH + token_hash, "username", "family")
        if username is None or family is None:
            return None
        return _str(username), _str(family)

    def rotate_refresh(self, old_hash: str, new_hash: str, username: str, family: str, ttl: int, access_ttl: int) -> Rotation:
        """``access_ttl``: on reuse the family's access tokens are denied that long (``TokenState.deny_family``)."""
        keys = [REFRESH + old_hash, REFRESH + new_hash, FAMILY + family, USER_FAMILIES + username, self.token_state.family_deny_key(family)]
        result = self._scripts["rotate_refresh"](keys=keys, args=[username, family, ttl, access_ttl + LEEWAY_SECONDS])
        status = result[0].decode()
        return Rotation(status, result[1].decode() if len(result) > 1 else None)

    def revoke_family(self, username: str, family: str, access_ttl: int) -> None:
        """End the family: its refresh tokens, and its access tokens for the ``access_ttl`` they can live."""
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(FAMILY + family)
            pipe.srem(USER_FAMILIES + username, family)
            self.token_state.deny_family(family, access_ttl, pipe)
            pipe.execute()
