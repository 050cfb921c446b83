"""The names of auth's Redis keys: the one module that builds them.

Key spaces (owner: auth).  Each carries a Redis Cluster hash tag: ``{<username>}`` for what is one
user's (the user slot), ``{<family>}`` for what is one refresh family's (the family slot); the
names index is a slot of its own:

``auth:user:{<username>}``          hash, no TTL: id (the account's immutable id: 128 random
                                    bits, hex, never reused; a re-created name gets a new one),
                                    username, password_hash, role ("admin"/"user"), active
                                    ("1"/"0"), created_at, updated_at
``auth:users``                      sorted set, no TTL: every username with score 0, so
                                    ZRANGEBYLEX lists them in name order for cursor paging
``auth:user-families:{<username>}`` set, TTL = REFRESH_TOKEN_TTL, renewed by each login and
                                    rotation: the user's family ids, to revoke them all
``auth:family:{<family>}``          hash, TTL = REFRESH_TOKEN_TTL, renewed by each rotation:
                                    username, created_at.  The family (one login's chain of
                                    refresh tokens) is alive while this key exists
``auth:refresh:{<family>}:<sha256(token)>``  hash, TTL = REFRESH_TOKEN_TTL: username, family,
                                    version (token version when issued), used ("0"/"1").  Only
                                    the hash of a refresh token is stored; a used token stays
                                    until it expires so that its reuse can be detected.  A
                                    refresh token is ``<family>.<random>``, so its key is found
                                    from the token (``refresh_key``)
``auth:ratelimit:user:{<username>}``  string counter, TTL = LOGIN_FAILURE_WINDOW from the first
``auth:ratelimit:pair:{<username>:<client>}``  failure: failed logins per username (all
``auth:ratelimit:ip:{<client>}``    clients), per username and client, per client
``auth:ratelimit:checking:pair:{<username>:<client>}``  sorted set, TTL = the hold (60 s),
``auth:ratelimit:checking:ip:{<client>}``  renewed: the password checks in flight (attempt id
                                    -> until when it holds its place, unix s)
``auth:ratelimit:wait:{<username>}:<client>``  string, TTL = the client's delay: past the
                                    username's ceiling, how long this client still waits.
                                    These are written by ``redfile_common.limiter``
                                    (``login_scopes``: one scope's keys, one slot); ``<client>``
                                    is ``limiter.client_id``

Keys named before hash tags existed are renamed once at start-up (``migration``); a refresh
token issued before then (no ``.``) is still found under ``auth:refresh:<sha256(token)>`` on a
single Redis (``refresh_key``).
"""

from __future__ import annotations

from redfile_common.limiter import Scope

USER = "auth:user:"
USERS = "auth:users"
REFRESH = "auth:refresh:"
FAMILY = "auth:family:"
USER_FAMILIES = "auth:user-families:"
FAMILY_SEPARATOR = "."  # a refresh token is ``<family>.<random>``; neither part holds a "."
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


def user_key(username: str) -> str:
    return USER + tag(username)


def families_key(username: str) -> str:
    return USER_FAMILIES + tag(username)


def family_key(family: str) -> str:
    return FAMILY + tag(family)


def refresh_key(token_hash: str, family: str | None) -> str:
    """A refresh token's key: in its family's slot, or (``family`` None: a token issued before
    tokens carried their family) the name it was stored under then."""
    return f"{REFRESH}{tag(family)}:{token_hash}" if family is not None else REFRESH + token_hash


def refresh_family(refresh_token: str) -> str | None:
    """The family a refresh token names (``<family>.<random>``); None for a token without one."""
    family, dot, _ = refresh_token.partition(FAMILY_SEPARATOR)
    return family if dot and family else None
