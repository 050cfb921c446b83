"""HS256 JWTs with ``kid``-based key rotation.

Two keyrings, never mixed: user tokens (``typ=access``, minted by auth) and
service tokens (``typ=service``, minted by the calling service for exactly one
target service, at most 60 s).  The first key of a keyring signs; every key
verifies, so a new key is rolled out by adding it second, then moving it
first, then dropping the old one once its tokens have expired.

Revocation state (``rf:tokstate:*`` and ``rf:tokdeny:*``) is written only by
the auth service and read by every service through ``TokenState``; see
docs/architecture.md.
"""

from __future__ import annotations

import contextlib
import secrets
import time
from dataclasses import dataclass, field

import jwt
from redis.cluster import RedisCluster

from .settings import SigningKey

ACCESS = "access"
SERVICE = "service"
MAX_SERVICE_TOKEN_TTL = 60
LEEWAY_SECONDS = 5
FAMILY_MARK = "~"  # starts every family id auth issues; one without it was issued before families had a hash tag


class TokenError(Exception):
    """A token that must be refused; ``reason`` is a short stable label for logs/metrics."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True)
class Claims:
    sub: str
    typ: str
    aud: str
    iss: str
    jti: str
    iat: int
    exp: int
    role: str | None = None
    scopes: tuple[str, ...] = ()
    ver: str | None = None
    fam: str | None = None
    uid: str = ""  # the account's immutable id (auth's); "" in a token minted before ids existed
    raw: dict = field(default_factory=dict, repr=False, compare=False)


class Keyring:
    """Signs with the first key and verifies with any key of the ring.

    A token that verified once is remembered (up to ``VERIFIED_CACHE`` tokens,
    the oldest forgotten first), so the same token on its next request costs a
    dictionary lookup and an expiry check instead of PyJWT's decode (a third of
    a small request's own CPU).  Only full successes are
    kept, under the exact token string and the audience and issuer asked for;
    the keyring never changes in a running process, and revocation is checked
    in Redis on every request regardless.
    """

    VERIFIED_CACHE = 4096

    def __init__(self, keys: list[SigningKey]) -> None:
        if not keys:
            raise ValueError("a keyring needs at least one key")
        self._keys = list(keys)
        self._by_kid = {k.kid: k for k in keys}
        self._verified: dict[tuple[str, str, str | None], dict] = {}

    @property
    def signing_key(self) -> SigningKey:
        return self._keys[0]

    def sign(self, payload: dict) -> str:
        key = self.signing_key
        return jwt.encode(payload, key.secret, algorithm="HS256", headers={"kid": key.kid})

    def verify(self, token: str, *, audience: str, issuer: str | None = None) -> dict:
        cache_key = (token, audience, issuer)
        payload = self._verified.get(cache_key)
        if payload is not None:
            if int(payload["exp"]) + LEEWAY_SECONDS <= time.time():
                self._verified.pop(cache_key, None)
                raise TokenError("expired")
            return payload
        payload = self._decode(token, audience=audience, issuer=issuer)
        if len(self._verified) >= self.VERIFIED_CACHE:
            with contextlib.suppress(KeyError, RuntimeError, StopIteration):  # another thread got there first
                del self._verified[next(iter(self._verified))]
        self._verified[cache_key] = payload
        return payload

    def _decode(self, token: str, *, audience: str, issuer: str | None) -> dict:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            raise TokenError("malformed") from None
        if header.get("alg") != "HS256":
            raise TokenError("bad_algorithm")
        key = self._by_kid.get(header.get("kid", ""))
        if key is None:
            raise TokenError("unknown_key")
        try:
            return jwt.decode(
                token,
                key.secret,
                algorithms=["HS256"],
                audience=audience,
                issuer=issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["iss", "sub", "aud", "iat", "exp", "jti", "typ"]},
            )
        except jwt.ExpiredSignatureError:
            raise TokenError("expired") from None
        except jwt.InvalidAudienceError:
            raise TokenError("wrong_audience") from None
        except jwt.InvalidIssuerError:
            raise TokenError("wrong_issuer") from None
        except jwt.InvalidSignatureError:
            raise TokenError("bad_signature") from None
        except jwt.PyJWTError:
            raise TokenError("invalid") from None


def _claims(payload: dict) -> Claims:
    return Claims(
        sub=str(payload["sub"]),
        typ=str(payload["typ"]),
        aud=str(payload["aud"]),
        iss=str(payload["iss"]),
        jti=str(payload["jti"]),
        iat=int(payload["iat"]),
        exp=int(payload["exp"]),
        role=payload.get("role"),
        scopes=tuple(payload.get("scopes") or ()),
        ver=payload.get("ver"),
        fam=payload.get("fam"),
        uid=str(payload.get("uid") or ""),
        raw=payload,
    )


def new_jti() -> str:
    return secrets.token_urlsafe(16)


class UserTokens:
    """Access tokens: minted by auth, verified by every service."""

    def __init__(self, keyring: Keyring, *, issuer: str, audience: str) -> None:
        self.keyring = keyring
        self.issuer = issuer
        self.audience = audience

    def mint(
        self, *, username: str, role: str, scopes: list[str], version: str, ttl: int, family: str | None = None, uid: str = ""
    ) -> tuple[str, Claims]:
        """``family``: the refresh family (one login) the token belongs to; its revocation ends the token.
        ``uid``: the account's immutable id."""
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "sub": username,
            "aud": self.audience,
            "iat": now,
            "exp": now + ttl,
            "jti": new_jti(),
            "typ": ACCESS,
            "role": role,
            "scopes": list(scopes),
            "ver": version,
        }
        if family is not None:
            payload["fam"] = family
        if uid:
            payload["uid"] = uid  # who the name belongs to: a re-created name is another account
        return self.keyring.sign(payload), _claims(payload)

    def verify(self, token: str) -> Claims:
        payload = self.keyring.verify(token, audience=self.audience, issuer=self.issuer)
        if payload.get("typ") != ACCESS:
            raise TokenError("wrong_type")
        if payload.get("role") not in ("admin", "user") or not payload.get("ver"):
            raise TokenError("invalid")
        return _claims(payload)


class ServiceTokens:
    """Service-to-service tokens: ``sub`` is the caller, ``aud`` the one target service."""

    def __init__(self, keyring: Keyring, *, service_name: str, ttl: int = 30) -> None:
        if not 0 < ttl <= MAX_SERVICE_TOKEN_TTL:
            raise ValueError("service tokens live at most 60 s")
        self.keyring = keyring
        self.service_name = service_name
        self.ttl = ttl

    @property
    def issuer(self) -> str:
        return f"redfile-{self.service_name}"

    def mint(self, target: str) -> str:
        now = int(time.time())
        return self.keyring.sign(
            {
                "iss": self.issuer,
                "sub": self.service_name,
                "aud": f"redfile-{target}",
                "iat": now,
                "exp": now + self.ttl,
                "jti": new_jti(),
                "typ": SERVICE,
                "scopes": ["internal"],
            }
        )

    def verify(self, token: str) -> Claims:
        """Accept only service tokens addressed to this service."""
        payload = self.keyring.verify(token, audience=f"redfile-{self.service_name}")
        if payload.get("typ") != SERVICE:
            raise TokenError("wrong_type")
        if int(payload["exp"]) - int(payload["iat"]) > MAX_SERVICE_TOKEN_TTL:
            raise TokenError("lifetime_too_long")
        if payload.get("iss") != f"redfile-{payload.get('sub')}":
            raise TokenError("wrong_issuer")
        return _claims(payload)


class TokenState:
    """Per-user token version and per-token denylist, kept in Redis.

    Key spaces (owner: auth writes, every service reads):
      ``rf:tokstate:{<username>}``  string, the user's current token version; no TTL.
          Changed whenever the user's role, password or active flag changes, and
          deleted with the user, so their existing tokens fail on the next request.
          In the user's slot (hash tag ``{<username>}``, with auth's user record).
      ``rf:tokdeny:<jti>``        string "1", TTL = the token's remaining life;
          set on logout.
      ``rf:tokdeny:family:{<family>}``  string "1", TTL = the access-token TTL (plus
          leeway): the refresh family (one login) was revoked -- a reused refresh
          token, or logout with the refresh token -- so every access token minted
          from it (claim ``fam``) is refused.  A token without ``fam`` has no family.
          In the family's slot (hash tag ``{<family>}``, with auth's family and its
          refresh tokens), so a family's revocation denies it in the same step.  A family
          id without ``FAMILY_MARK`` was issued by an earlier release, which denied it
          under ``rf:tokdeny:family:<family>``: on a single Redis the check reads that key
          too, in the same ``MGET`` (a Cluster holds no such family).

    The check reads these keys (two or three) in one round trip, the one every request
    already makes: one ``MGET`` on a single Redis; on Redis Cluster, where they sit in up
    to three slots, one GET each in a pipeline, which the cluster client sends to their
    nodes together and reads back in one wait.  Revoking a family costs verifiers nothing
    extra.

    Failure mode: if Redis cannot be read the request fails (503): we do not
    let a possibly revoked token through.
    """

    VERSION_PREFIX = "rf:tokstate:"
    DENY_PREFIX = "rf:tokdeny:"
    FAMILY_DENY_PREFIX = "rf:tokdeny:family:"  # under DENY_PREFIX: the same ACL; a jti never holds ':'

    def __init__(self, redis_client) -> None:
        self.redis = redis_client
        self._cluster = isinstance(redis_client, RedisCluster)

    @classmethod
    def version_key(cls, username: str) -> str:
        return cls.VERSION_PREFIX + "{" + username + "}"

    @classmethod
    def family_deny_key(cls, family: str) -> str:
        return cls.FAMILY_DENY_PREFIX + "{" + family + "}"

    def check(self, claims: Claims, reads=None) -> list | None:
        """Raise ``TokenError("revoked")`` unless the token's version is current and it is not denied.

        ``reads``: a function that adds read commands to a pipeline.  They go in
        the same round trip, after the check's reads, and their replies are
        returned only when the check passed (else nothing of them is used).
        Reads only: a request's first read, not any write, may travel with the
        check (``login_required(reads=...)``).
        """
        keys = [self.version_key(claims.sub), self.DENY_PREFIX + claims.jti]
        if claims.fam:
            keys.append(self.family_deny_key(claims.fam))
            if not self._cluster and not claims.fam.startswith(FAMILY_MARK):
                keys.append(self.FAMILY_DENY_PREFIX + claims.fam)  # a family from before the tags: its denial may be there
        if reads is None and not self._cluster:
            (version, *denied), replies = self.redis.mget(*keys), None
        else:
            with self.redis.pipeline(transaction=False) as pipe:
                if self._cluster:
                    for key in keys:
                        pipe.get(key)
                else:
                    pipe.mget(*keys)
                if reads is not None:
                    reads(pipe)
                results = pipe.execute()
            if self._cluster:
                (version, *denied), replies = results[: len(keys)], results[len(keys) :]
            else:
                (version, *denied), *replies = results
            replies = replies if reads is not None else None
        if any(d is not None for d in denied):
            raise TokenError("revoked")
        if version is None or version.decode() != claims.ver:
            raise TokenError("revoked")
        return replies

    # -- writers (auth only) -------------------------------------------------
    def bump(self, username: str, pipe=None) -> str:
        version = secrets.token_hex(8)
        (pipe or self.redis).set(self.version_key(username), version)
        return version

    def current(self, username: str) -> str | None:
        raw = self.redis.get(self.version_key(username))
        return raw.decode() if raw is not None else None

    def forget(self, username: str, pipe=None) -> None:
        (pipe or self.redis).delete(self.version_key(username))

    def deny_family(self, family: str, access_ttl: int, pipe=None) -> None:
        """Refuse every access token minted from ``family`` for as long as one of them can live."""
        (pipe or self.redis).set(self.family_deny_key(family), "1", ex=access_ttl + LEEWAY_SECONDS)

    def deny(self, claims: Claims) -> None:
        ttl = max(1, claims.exp - int(time.time()) + LEEWAY_SECONDS)
        self.redis.set(self.DENY_PREFIX + claims.jti, "1", ex=ttl)
