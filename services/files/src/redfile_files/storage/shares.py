"""Redis storage of sharing: share links, named recipients, their indexes.

The only code of sharing that talks to Redis.  As in ``storage``, every key
starts with ``files:`` and a hash tag, and no command or script touches keys of
two tags.  A share lives under its **file's** tag, so the file slot alone
decides whether a download may happen (the share, its counter and the file's
meta are read and changed by one script), and deleting a file finds every
share of it in its own slot.

==========================================  ======  =====================================================
key                                         type    holds / TTL
==========================================  ======  =====================================================
``files:{<fid>}:share:<sid>``               hash    one share link: id, file_id, owner, token_sha256,
                                                    password (argon2id hash or empty), expires_ts
                                                    (0: never), max_downloads (0: no limit),
                                                    downloads, preview (1/0), burn (1/0), created_at.
                                                    No TTL (an expired link answers 410 until
                                                    revoked), or the file's expiry.
``files:{<fid>}:shares``                    hash    sid -> created_at: every link of the file
                                                    (no TTL, or the file's expiry)
``files:{<fid>}:recipients``                hash    username -> created_at: users it is shared with
                                                    (no TTL, or the file's expiry)
``files:{l:<token_sha256>}:link``           string  "<fid>:<sid>": the token's link (the token itself
                                                    is never stored).  No TTL, or the file's expiry.
``files:{l:<token_sha256>}:pwfail``         string  wrong passwords in the window.   EXPIREAT end of
                                                    the window (from the first attempt).
``files:{l:<token_sha256>}:pwcheck``        zset    password checks in flight: attempt id -> until
                                                    when it holds its place (unix s).  EXPIREAT that.
``files:{u:<owner>}:links``                 hash    sid -> fid: the owner's links
``files:{u:<user>}:inbox``                  hash    fid -> owner: files shared with the user
==========================================  ======  =====================================================

**Truth and derived state.**  A link exists iff its share hash exists *and* its
file's meta does; a recipient may read iff the file's ``recipients`` has them
and the meta exists.  The ``link`` lookup, the owner's ``links`` and the
recipient's ``inbox`` are indexes in other slots: they are written *before*
the file-slot step when acquiring and removed *after* it when releasing, so a
crash leaves an index entry pointing at nothing, never a share without one.
Readers skip such entries and remove them (lazy repair), as the file index.
"""

from __future__ import annotations

import redis

from redfile_files.storage.files import meta_key


def share_key(file_id: str, share_id: str) -> str:
    return f"files:{{{file_id}}}:share:{share_id}"


def shares_key(file_id: str) -> str:
    return f"files:{{{file_id}}}:shares"


def recipients_key(file_id: str) -> str:
    return f"files:{{{file_id}}}:recipients"


def link_key(token_sha256: str) -> str:
    return f"files:{{l:{token_sha256}}}:link"


def pwfail_key(token_sha256: str) -> str:
    return f"files:{{l:{token_sha256}}}:pwfail"


def pwcheck_key(token_sha256: str) -> str:
    return f"files:{{l:{token_sha256}}}:pwcheck"


def links_key(owner: str) -> str:
    return f"files:{{u:{owner}}}:links"


def inbox_key(user: str) -> str:
    return f"files:{{u:{user}}}:inbox"


# KEYS: share, shares, meta.  ARGV: sid, created_at, then the share's fields.
_CREATE = """
if redis.call('EXISTS', KEYS[3]) == 0 then return 'missing' end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSET', KEYS[2], ARGV[1], ARGV[2])
local exp = tonumber(redis.call('HGET', KEYS[3], 'expires_ts') or '0') or 0
if exp > 0 then redis.call('EXPIREAT', KEYS[1], exp); redis.call('EXPIREAT', KEYS[2], exp) end
return 'ok'
"""

# KEYS: share, meta.  ARGV: token_sha256, reserve (1/0).
# The one atomic decision of a link download: it exists, is for this token, is neither
# expired nor used up, and (reserve) one download is counted -- before a byte is sent.
_USE = """
local s = redis.call('HMGET', KEYS[1], 'token_sha256', 'expires_ts', 'max_downloads', 'downloads')
if not s[1] or s[1] ~= ARGV[1] then return {'missing'} end
if redis.call('EXISTS', KEYS[2]) == 0 then return {'missing'} end
local now = tonumber(redis.call('TIME')[1])
local exp = tonumber(s[2]) or 0
if exp > 0 and now >= exp then return {'expired'} end
local max = tonumber(s[3]) or 0
local n = tonumber(s[4]) or 0
if max > 0 and n >= max then return {'used_up'} end
if ARGV[2] == '1' then n = redis.call('HINCRBY', KEYS[1], 'downloads', 1) end
return {'ok', n}
"""

# KEYS: pwfail, pwcheck.  ARGV: limit, attempt id, hold seconds.  A place for one password check:
# 'locked' (the failures reached the limit), 'busy' (failures + checks in flight did) or 'ok'.
_BEGIN_CHECK = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local limit = tonumber(ARGV[1])
local failed = tonumber(redis.call('GET', KEYS[1]) or '0')
if failed >= limit then return 'locked' end
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now)
if failed + redis.call('ZCARD', KEYS[2]) >= limit then return 'busy' end
redis.call('ZADD', KEYS[2], now + tonumber(ARGV[3]), ARGV[2])
redis.call('EXPIREAT', KEYS[2], math.ceil(now) + tonumber(ARGV[3]))
return 'ok'
"""

# KEYS: pwfail, pwcheck.  ARGV: attempt id, '1' when the password was wrong, window seconds.
# The check gives its place up; a wrong password is counted in the same step.  The failures.
_END_CHECK = """
redis.call('ZREM', KEYS[2], ARGV[1])
if ARGV[2] ~= '1' then return tonumber(redis.call('GET', KEYS[1]) or '0') end
local n = redis.call('INCRBY', KEYS[1], 1)
if n == 1 then redis.call('EXPIREAT', KEYS[1], tonumber(redis.call('TIME')[1]) + tonumber(ARGV[3])) end
return n
"""

# KEYS: recipients, meta.  ARGV: user, created_at.
_ADD_RECIPIENT = """
if redis.call('EXISTS', KEYS[2]) == 0 then return 'missing' end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local exp = tonumber(redis.call('HGET', KEYS[2], 'expires_ts') or '0') or 0
if exp > 0 then redis.call('EXPIREAT', KEYS[1], exp) end
return 'ok'
"""

# KEYS: shares, recipients.  ARGV: share key prefix.  Every share of a file, at once.
_PURGE = """
local out = {}
for _, sid in ipairs(redis.call('HKEYS', KEYS[1])) do
  local k = ARGV[1] .. sid
  local h = redis.call('HMGET', k, 'token_sha256', 'owner')
  table.insert(out, sid); table.insert(out, h[1] or ''); table.insert(out, h[2] or '')
  redis.call('UNLINK', k)
end
local users = redis.call('HKEYS', KEYS[2])
redis.call('UNLINK', KEYS[1], KEYS[2])
return {out, users}
"""


def _s(value) -> str:
    return value.decode() if isinstance(value, bytes) else ("" if value is None else str(value))


class ShareStore:
    """Share links and recipients in Redis.  Contract:

    * ``create_link`` returns False (and writes nothing in the file slot) when the file is gone;
    * ``use_link`` returns ``('missing'|'expired'|'used_up', 0)`` or ``('ok', downloads)``,
      counting a download only with ``reserve`` and only when it returns ``ok``;
    * ``revoke`` and ``purge_file`` remove the link hashes first, then the indexes.
    """

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self._create = client.register_script(_CREATE)
        self._use = client.register_script(_USE)
        self._begin_check = client.register_script(_BEGIN_CHECK)
        self._end_check = client.register_script(_END_CHECK)
        self._add_recipient = client.register_script(_ADD_RECIPIENT)
        self._purge = client.register_script(_PURGE)

    # -- links -------------------------------------------------------------------
    def create_link(self, fields: dict, *, file_expires_ts: int = 0) -> bool:
        """The file's expiry, when it has one, ends the link's keys with it (its own expiry is a field: 410)."""
        fid, sid, owner = fields["file_id"], fields["id"], fields["owner"]
        self.redis.hset(links_key(owner), sid, fid)  # indexes first (acquiring)
        self.redis.set(link_key(fields["token_sha256"]), f"{fid}:{sid}", exat=file_expires_ts or None)
        flat = [str(x) for kv in fields.items() for x in kv]
        ok = _s(self._create(keys=[share_key(fid, sid), shares_key(fid), meta_key(fid)], args=[sid, fields["created_at"], *flat])) == "ok"
        if not ok:
            self.redis.delete(link_key(fields["token_sha256"]))
            self.redis.hdel(links_key(owner), sid)
        return ok

    def resolve(self, token_sha256: str) -> tuple[str, str] | None:
        value = self.redis.get(link_key(token_sha256))
        if value is None:
            return None
        fid, _, sid = _s(value).partition(":")
        return fid, sid

    def get_link(self, file_id: str, share_id: str) -> dict | None:
        raw = self.redis.hgetall(share_key(file_id, share_id))
        return {_s(k): _s(v) for k, v in raw.items()} or None

    def get_links(self, pairs: list[tuple[str, str]]) -> list[dict | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for fid, sid in pairs:
                pipe.hgetall(share_key(fid, sid))
            rows = pipe.execute()
        return [{_s(k): _s(v) for k, v in row.items()} or None for row in rows]

    def use_link(self, file_id: str, share_id: str, token_sha256: str, *, reserve: bool) -> tuple[str, int]:
        result = self._use(keys=[share_key(file_id, share_id), meta_key(file_id)], args=[token_sha256, "1" if reserve else "0"])
        return _s(result[0]), int(result[1]) if len(result) > 1 else 0

    def begin_password_check(self, token_sha256: str, attempt: str, *, limit: int, hold: int) -> str:
        """Take a place for one password check: ``ok``, ``busy`` (every place is in flight) or ``locked``."""
        keys = [pwfail_key(token_sha256), pwcheck_key(token_sha256)]
        return _s(self._begin_check(keys=keys, args=[limit, attempt, hold]))

    def end_password_check(self, token_sha256: str, attempt: str, *, wrong: bool, window: int) -> int:
        """Give the check's place up, counting a wrong password in the same step; the failures now."""
        keys = [pwfail_key(token_sha256), pwcheck_key(token_sha256)]
        return int(self._end_check(keys=keys, args=[attempt, "1" if wrong else "0", window]))

    def owner_links(self, owner: str) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.redis.hgetall(links_key(owner)).items()}

    def forget_owner_links(self, owner: str, share_ids: list[str]) -> None:
        if share_ids:
            self.redis.hdel(links_key(owner), *share_ids)

    def revoke(self, file_id: str, share_id: str, token_sha256: str, owner: str) -> None:
        with self.redis.pipeline(transaction=True) as pipe:  # one slot
            pipe.unlink(share_key(file_id, share_id))
            pipe.hdel(shares_key(file_id), share_id)
            pipe.execute()
        if token_sha256:
            self.redis.delete(link_key(token_sha256))
        self.redis.hdel(links_key(owner), share_id)

    # -- recipients ------------------------------------------------------------------
    def add_recipient(self, file_id: str, owner: str, user: str, created_at: str) -> bool:
        self.redis.hset(inbox_key(user), file_id, owner)
        ok = _s(self._add_recipient(keys=[recipients_key(file_id), meta_key(file_id)], args=[user, created_at])) == "ok"
        if not ok:
            self.redis.hdel(inbox_key(user), file_id)
        return ok

    def remove_recipient(self, file_id: str, user: str) -> bool:
        removed = bool(self.redis.hdel(recipients_key(file_id), user))
        self.redis.hdel(inbox_key(user), file_id)
        return removed

    def recipients(self, file_id: str) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.redis.hgetall(recipients_key(file_id)).items()}

    def may_read(self, file_id: str, user: str) -> bool:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hexists(recipients_key(file_id), user)
            pipe.exists(meta_key(file_id))
            shared, exists = pipe.execute()
        return bool(shared) and bool(exists)

    def inbox(self, user: str) -> dict[str, str]:
        return {_s(k): _s(v) for k, v in self.redis.hgetall(inbox_key(user)).items()}

    def forget_inbox(self, user: str, file_ids: list[str]) -> None:
        if file_ids:
            self.redis.hdel(inbox_key(user), *file_ids)

    # -- a file is gone ----------------------------------------------------------------
    def purge_file(self, file_id: str) -> int:
        """Remove every link and recipient of a (deleted) file; how many shares there were."""
        links, users = self._purge(keys=[shares_key(file_id), recipients_key(file_id)], args=[share_key(file_id, "")])
        links = [_s(x) for x in links]
        for i in range(0, len(links), 3):
            sid, token_sha256, owner = links[i : i + 3]
            if token_sha256:
                self.redis.delete(link_key(token_sha256))
            if owner:
                self.redis.hdel(links_key(owner), sid)
        for user in users:
            self.redis.hdel(inbox_key(_s(user)), file_id)
        return len(links) // 3 + len(users)


__all__ = ["ShareStore", "inbox_key", "link_key", "links_key", "pwcheck_key", "pwfail_key", "recipients_key", "share_key", "shares_key"]
