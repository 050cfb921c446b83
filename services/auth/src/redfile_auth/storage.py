"""Redis storage of the auth service: the only module of auth that talks to Redis.

Key spaces (owner: auth; no hash tags: auth expects one Redis primary, not Redis Cluster):

``auth:user:{username}``            hash, no TTL: username, password_hash, role
                                    ("admin"/"user"), active ("1"/"0"), created_at, updated_at
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
``auth:ratelimit:ip:{addr}``        failure: failed logins per username / client address
``auth:ratelimit:checking:user:{username}``  sorted set, TTL = the hold (60 s), renewed: the
``auth:ratelimit:checking:ip:{addr}``        password checks in flight (attempt id -> until
                                    when it holds its place, unix s); a crashed check's place
                                    frees itself at that time

It also writes ``rf:tokstate:{username}`` and ``rf:tokdeny:{jti}`` through the shared
``TokenState`` (see redfile_common.tokens), in the same MULTI as the user change.

Contract:
* ``create_user`` writes nothing and returns None when the name is taken (WATCH/MULTI).
* ``update_user`` and ``delete_user`` change the record, the token version and the
  user's refresh families in one MULTI, so no session outlives the change.
* ``rotate_refresh`` is one Lua script: the presented token is marked used and its
  successor written, or, when it was already used, the whole family is revoked.
* Failure mode: Redis errors are not caught here.  They reach the shared error
  handler (503), so login and its rate limiting fail closed: no Redis, no login.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass, field

import redis

from redfile_common.tokens import Claims, TokenState

USER = "auth:user:"
USERS = "auth:users"
REFRESH = "auth:refresh:"
FAMILY = "auth:family:"
USER_FAMILIES = "auth:user-families:"
RATE_USER = "auth:ratelimit:user:"
RATE_IP = "auth:ratelimit:ip:"
CHECKING_USER = "auth:ratelimit:checking:user:"
CHECKING_IP = "auth:ratelimit:checking:ip:"

# KEYS: old token, new token, family, user-families; ARGV: username, family, ttl.
_ROTATE = """
local rec = redis.call('HMGET', KEYS[1], 'username', 'family', 'version', 'used')
if not rec[1] or rec[1] ~= ARGV[1] or rec[2] ~= ARGV[2] then return {'invalid'} end
if redis.call('EXISTS', KEYS[3]) == 0 then return {'revoked'} end
if rec[4] ~= '0' then
  redis.call('DEL', KEYS[3])
  redis.call('SREM', KEYS[4], ARGV[2])
  return {'reuse'}
end
redis.call('HSET', KEYS[1], 'used', '1')
redis.call('HSET', KEYS[2], 'username', ARGV[1], 'family', ARGV[2], 'version', rec[3], 'used', '0')
redis.call('EXPIRE', KEYS[2], ARGV[3])
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('EXPIRE', KEYS[4], ARGV[3])
return {'ok', rec[3]}
"""


@dataclass(frozen=True)
class UserRecord:
    username: str
    role: str
    active: bool
    created_at: str
    updated_at: str
    password_hash: str = field(repr=False)

    def to_redis(self) -> dict[str, str]:
        return {
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
        )

    def public(self) -> dict:
        return {
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


@dataclass(frozen=True)
class Failures:
    user: int
    user_ttl: int
    ip: int
    ip_ttl: int


@dataclass(frozen=True)
class Admission:
    """Failures and password checks in flight (this one included) of a username and an address."""

    failures: Failures
    user_checking: int
    ip_checking: int


def _text(raw: dict) -> dict[str, str]:
    return {k.decode(): v.decode() for k, v in raw.items()}


class AuthStore:
    def __init__(self, client: redis.Redis, token_state: TokenState) -> None:
        self.redis = client
        self.token_state = token_state
        self._rotate = client.register_script(_ROTATE)

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

        return self.redis.transaction(txn, key, value_from_callable=True)

    def get_user(self, username: str) -> UserRecord | None:
        return UserRecord.from_redis(_text(self.redis.hgetall(USER + username)))

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
                pipe.hgetall(USER + name.decode())
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

        return self.redis.transaction(txn, key, families_key, value_from_callable=True)

    def replace_password_hash(self, username: str, old_hash: str, new_hash: str) -> bool:
        """Swap in a rehash of the same password, unless the hash changed meanwhile."""
        key = USER + username

        def txn(pipe) -> bool:
            if pipe.hget(key, "password_hash") != old_hash.encode():
                return False
            pipe.multi()
            pipe.hset(key, "password_hash", new_hash)
            return True

        return self.redis.transaction(txn, key, value_from_callable=True)

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

        return self.redis.transaction(txn, key, families_key, value_from_callable=True)

    @staticmethod
    def _revoke_all(pipe, username: str, families) -> None:
        pipe.delete(USER_FAMILIES + username, *(FAMILY + f.decode() for f in families))

    # -- access tokens -------------------------------------------------------
    def new_version(self, username: str) -> str:
        return self.token_state.bump(username)

    def deny(self, claims: Claims) -> None:
        self.token_state.deny(claims)

    # -- refresh tokens ------------------------------------------------------
    def start_family(self, username: str, token_hash: str, version: str, ttl: int, now: str) -> str:
        """Open a new refresh family for a login with its first token; returns the family id."""
        family = secrets.token_urlsafe(16)
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
        return username.decode(), family.decode()

    def rotate_refresh(self, old_hash: str, new_hash: str, username: str, family: str, ttl: int) -> Rotation:
        keys = [REFRESH + old_hash, REFRESH + new_hash, FAMILY + family, USER_FAMILIES + username]
        result = self._rotate(keys=keys, args=[username, family, ttl])
        status = result[0].decode()
        return Rotation(status, result[1].decode() if len(result) > 1 else None)

    def revoke_family(self, username: str, family: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.delete(FAMILY + family)
            pipe.srem(USER_FAMILIES + username, family)
            pipe.execute()

    # -- failed-login counters -----------------------------------------------
    def failures(self, username: str | None, addr: str) -> Failures:
        user_key = RATE_USER + username if username else None
        with self.redis.pipeline(transaction=False) as pipe:
            for key in (user_key, RATE_IP + addr):
                if key:
                    pipe.get(key)
                    pipe.ttl(key)
            values = pipe.execute()
        if user_key is None:
            values = [None, -2, *values]
        user, user_ttl, ip, ip_ttl = values
        return Failures(int(user or 0), int(user_ttl), int(ip or 0), int(ip_ttl))

    def clear_user_failures(self, username: str) -> None:
        self.redis.delete(RATE_USER + username)

    # Password checks in flight: a check takes its place before argon2 runs and gives it up
    # after, as a failure or not, so failures + checks in flight bound what can still fail.
    def _rate_keys(self, username: str | None, addr: str) -> list[tuple[str, str]]:
        pairs = [(RATE_USER + username, CHECKING_USER + username)] if username else []
        return pairs + [(RATE_IP + addr, CHECKING_IP + addr)]

    def begin_check(self, username: str | None, addr: str, attempt: str, hold: int) -> Admission:
        """Hold a place for one password check (for at most ``hold`` s) and read the counts, in one MULTI."""
        now = time.time()
        pairs = self._rate_keys(username, addr)
        with self.redis.pipeline(transaction=True) as pipe:
            for failed, checking in pairs:
                pipe.zremrangebyscore(checking, "-inf", now)
                pipe.zadd(checking, {attempt: now + hold})
                pipe.expire(checking, hold)
                pipe.zcard(checking)
                pipe.get(failed)
                pipe.ttl(failed)
            rows = pipe.execute()
        counts = [(int(rows[i + 3]), int(rows[i + 4] or 0), int(rows[i + 5])) for i in range(0, len(rows), 6)]
        user = counts[0] if username else (0, 0, -2)
        ip = counts[-1]
        return Admission(Failures(user[1], user[2], ip[1], ip[2]), user[0], ip[0])

    def end_check(self, username: str | None, addr: str, attempt: str, *, failed: bool, window: int) -> tuple[int | None, int]:
        """Give up the check's place; when it ``failed``, count the failure in the same MULTI.  The (user, ip) failures."""
        pairs = self._rate_keys(username, addr)
        with self.redis.pipeline(transaction=True) as pipe:
            for failed_key, checking in pairs:
                pipe.zrem(checking, attempt)
                if failed:
                    pipe.set(failed_key, 0, ex=window, nx=True)
                    pipe.incr(failed_key)
                else:
                    pipe.get(failed_key)
            rows = pipe.execute()
        counts = [int(rows[i] or 0) for i in range(len(rows)) if (i % 3 == 2 if failed else i % 2 == 1)]
        return (counts[0], counts[1]) if username else (None, counts[0])
