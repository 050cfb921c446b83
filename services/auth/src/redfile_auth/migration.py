"""Renames auth's keys stored before they carried Redis Cluster hash tags, once, at start-up.

A store written by an earlier release keeps ``auth:user:<name>``, ``auth:user-families:<name>``,
``rf:tokstate:<name>`` and ``auth:family:<family>``; this release reads ``auth:user:{<name>}``
and so on (``keys``).  ``migrate`` walks the names index (``auth:users``, which keeps its name)
-- no SCAN: auth's Redis user may not list key names -- and, for each name, the old families
index; it moves every such key to its new name with its value and TTL (``DUMP`` / ``RESTORE``,
which works across slots), deletes the old one, and marks the store (``auth:key-layout`` =
``2``) so later start-ups skip the walk.  Left where they are, and read there: the refresh
tokens issued before (``auth:refresh:<sha256(token)>``, ``keys.refresh_key``) until they are
used up or expire, and the denials of families revoked before
(``rf:tokdeny:family:<family>``, read by ``TokenState.check``) until theirs end.

Safe to run by several replicas at once: one holds ``auth:key-layout:lock`` (60 s) and walks;
the others wait for the mark, at most ``WAIT_SECONDS``, then start anyway.  Every step is
idempotent: a key already at its new name is kept (``RESTORE`` refuses to replace it: the newer
write wins) and its old copy deleted; a walk cut short is walked again by the next start-up.
A replica of the earlier release still running reads the old names: it answers 401 for the
tokens of users moved, and what it writes meanwhile under old names is not moved (its users
log in again); docs/operations.md.
"""

from __future__ import annotations

import secrets
import time

import redis
import structlog

from redfile_auth.keys import FAMILY, USER, USER_FAMILIES, USERS, family_key, tag
from redfile_common.tokens import TokenState

MARK = "auth:key-layout"
LOCK = "auth:key-layout:lock"
LAYOUT = b"2"
WAIT_SECONDS = 30.0
LOCK_SECONDS = 60

PAGE = 500

log = structlog.get_logger("redfile.auth")


def migrate(client: redis.Redis, *, wait_seconds: float = WAIT_SECONDS) -> int:
    """Move every key of an earlier layout to its tagged name; how many this call moved."""
    if client.get(MARK) == LAYOUT:
        return 0
    holder = secrets.token_hex(8)
    if not client.set(LOCK, holder, nx=True, ex=LOCK_SECONDS):
        deadline = time.monotonic() + wait_seconds
        while time.monotonic() < deadline and client.get(MARK) != LAYOUT:
            time.sleep(0.2)
        return 0
    moved = 0
    try:
        after = "-"
        while True:
            names = [_text(n) for n in client.zrangebylex(USERS, after, "+", start=0, num=PAGE)]
            for name in names:
                moved += _move_user(client, name)
            if len(names) < PAGE:
                break
            after = "(" + names[-1]
        client.set(MARK, LAYOUT)
    finally:
        if client.get(LOCK) == holder.encode():
            client.delete(LOCK)
    if moved:
        log.info("auth_keys_renamed", keys=moved)
    return moved


def _move_user(client: redis.Redis, name: str) -> int:
    families = [_text(f) for f in client.smembers(USER_FAMILIES + name)]
    moved = sum(_move(client, prefix + name, prefix + tag(name)) for prefix in (USER, USER_FAMILIES, TokenState.VERSION_PREFIX))
    return moved + sum(_move(client, FAMILY + f, family_key(f)) for f in families)


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _move(client: redis.Redis, old: str, new: str) -> int:
    dump = client.dump(old)
    if dump is None:
        return 0  # gone meanwhile, or never there
    ttl = client.pttl(old)
    if ttl == -2:
        return 0
    try:
        client.restore(new, max(ttl, 0), dump)
    except redis.ResponseError as error:
        if "BUSYKEY" not in str(error):
            raise
    client.delete(old)
    return 1
