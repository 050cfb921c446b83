"""Per-user state in the user's own hash slot, and the global index: quotas, holdings, indexes, due times.

Keys (see ``storage`` for the whole table): ``files:{u:<user>}:quota``,
``:held``, ``:files``, ``:due`` share the tag ``{u:<user>}``; the global index
``files:{all}:files`` and the sweep's keys share ``{all}``.  Each Lua script
below touches the keys of one tag only.

Contract:

* **held** records, per id, the bytes an upload has *reserved* (``r:<n>``) or
  a file has *charged* (``c:<n>``); ``quota.reserved`` and ``quota.used`` are
  their sums, changed only together with ``held``, in one script.  So
  ``used + reserved`` is what counts against the quota, and no interleaving of
  requests on any number of replicas can take it past the limit: each reserve
  checks and adds in one atomic step.
* ``reserve`` (new upload, or a seed upload's next chunk) refuses with
  ``quota_exceeded`` or ``payload_too_large`` (the user's largest file) and
  changes nothing; ``charge`` turns an upload's reservation into its file's
  size and indexes it; ``shrink`` gives back a reservation a chunk did not use.
* ``lease`` sets an id's due time to now + ``LEASE_US`` and returns it with the
  fence (now + ``FENCE_US``) for the file-slot step; ``reserve(lease=True)``
  and ``charge`` take one too.
* ``apply`` is the reconciler's (and a finishing operation's) write: set
  held, index entry and due time for an id to a target, only if the due score
  is still the one the caller saw (else ``busy``, nothing changes).
* A user's ``files`` index holds exactly the ids ``held`` records as charged
  (``c:``): every script that changes one changes the other.  So the user's
  counts cost O(1): files = ZCARD ``files``, bytes stored = ``quota.used``,
  uploads in progress = HLEN ``held`` - ZCARD ``files`` (``stats``).
* The global slot ``{all}`` keeps, beside the index, each indexed file's size
  (``files:{all}:sizes``) and their sum (``files:{all}:bytes``), changed in the
  same script as the index (``index_global``, ``unindex_global``), and the set
  of uploads in progress (``files:{all}:uploads``): added before the upload is
  created, removed after it is gone (completed, aborted, expired).  So global
  stats are two ZCARDs and a GET.  Both are derived state: the reconciler
  unindexes what no longer exists, and the sweep's walk of the global index
  drops dead entries and fills in a size missing for a live file.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import redis

from redfile_common.errors import ApiError

PREFIX = "files"
ALL_INDEX = f"{PREFIX}:{{all}}:files"
ALL_SIZES = f"{PREFIX}:{{all}}:sizes"
ALL_BYTES = f"{PREFIX}:{{all}}:bytes"
ALL_UPLOADS = f"{PREFIX}:{{all}}:uploads"
SWEEP_LOCK = f"{PREFIX}:{{all}}:sweep-lock"
GC_CURSOR = f"{PREFIX}:{{all}}:gc-cursor"
DUE_PATTERN = f"{PREFIX}:{{u:*}}:due"

LEASE_US = 120_000_000  # a multi-slot operation's lease
FENCE_US = 60_000_000  # its file-slot step must run within this (the rest is margin for clock skew)

_LIB = """
local function now_us()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000000 + tonumber(t[2])
end
local function int(x) if x == 0 then return '0' end return string.format('%.0f', x) end
local function lease(due, id, span)
  local now = now_us()
  local s = now + span
  local cur = redis.call('ZSCORE', due, id)
  if cur and tonumber(cur) == s then s = s + 1 end
  redis.call('ZADD', due, int(s), id)
  return s, now
end
local function parse(h)
  if not h then return nil, 0 end
  return string.sub(h, 1, 1), tonumber(string.sub(h, 3))
end
local function counter(kind) if kind == 'r' then return 'reserved' end return 'used' end
local function cleanup(quota, held)
  if redis.call('HLEN', held) == 0 then
    local q = redis.call('HMGET', quota, 'limit', 'max_file')
    if not q[1] and not q[2] then redis.call('DEL', quota) end
  end
end
"""

_RESERVE = (
    _LIB
    + """
local quota, held, due = KEYS[1], KEYS[2], KEYS[3]
local id, n, mode = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local kind, cur = parse(redis.call('HGET', held, id))
if mode == 'new' then
  if kind then return {'exists'} end
else
  if not kind then return {'gone'} end
  if kind == 'c' then return {'busy'} end
end
local q = redis.call('HMGET', quota, 'limit', 'max_file', 'used', 'reserved')
local limit = tonumber(q[1]) or tonumber(ARGV[4])
local max_file = tonumber(q[2]) or tonumber(ARGV[5])
local used, reserved = tonumber(q[3]) or 0, tonumber(q[4]) or 0
if cur + n > max_file then return {'too_large', max_file} end
if used + reserved + n > limit then return {'over_quota', limit, used, reserved} end
redis.call('HSET', held, id, 'r:' .. int(cur + n))
redis.call('HINCRBY', quota, 'reserved', int(n))
if ARGV[6] == '1' then
  local s, now = lease(due, id, tonumber(ARGV[7]))
  return {'ok', s, now}
end
return {'ok'}
"""
)

_SHRINK = (
    _LIB
    + """
local kind, x = parse(redis.call('HGET', KEYS[2], ARGV[1]))
if kind ~= 'r' then return 0 end
local y = math.max(0, x - tonumber(ARGV[2]))
redis.call('HSET', KEYS[2], ARGV[1], 'r:' .. int(y))
redis.call('HINCRBY', KEYS[1], 'reserved', int(y - x))
return 1
"""
)

_CHARGE = (
    _LIB
    + """
local quota, held, index, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, size = ARGV[1], tonumber(ARGV[2])
local kind, n = parse(redis.call('HGET', held, id))
if not kind then return {'gone'} end
if kind == 'c' then
  if n ~= size then return {'gone'} end
else
  if size > n then
    local q = redis.call('HMGET', quota, 'limit', 'used', 'reserved')
    local limit = tonumber(q[1]) or tonumber(ARGV[4])
    if (tonumber(q[2]) or 0) + (tonumber(q[3]) or 0) - n + size > limit then
      return {'over_quota', limit, tonumber(q[2]) or 0, tonumber(q[3]) or 0}
    end
  end
  redis.call('HSET', held, id, 'c:' .. int(size))
  redis.call('HINCRBY', quota, 'reserved', int(-n))
  redis.call('HINCRBY', quota, 'used', int(size))
end
redis.call('ZADD', index, ARGV[3], id)
local s, now = lease(due, id, tonumber(ARGV[5]))
return {'ok', s, now}
"""
)

_LEASE = (
    _LIB
    + """
local s, now = lease(KEYS[1], ARGV[1], tonumber(ARGV[2]))
return {s, now}
"""
)

_APPLY = (
    _LIB
    + """
local quota, held, index, due = KEYS[1], KEYS[2], KEYS[3], KEYS[4]
local id, expected, target = ARGV[1], ARGV[2], ARGV[3]
local cur = redis.call('ZSCORE', due, id)
if expected ~= '' and (not cur or tonumber(cur) ~= tonumber(expected)) then return 'busy' end
local okind, on = parse(redis.call('HGET', held, id))
local nkind, nn = nil, 0
if target ~= '' then
  if string.sub(target, 1, 2) == 'r>' then
    nkind, nn = 'r', math.max(tonumber(string.sub(target, 4)), on)
  else
    nkind, nn = 'c', tonumber(string.sub(target, 3))
  end
end
if okind then redis.call('HINCRBY', quota, counter(okind), int(-on)) end
if nkind then
  redis.call('HINCRBY', quota, counter(nkind), int(nn))
  redis.call('HSET', held, id, nkind .. ':' .. int(nn))
else
  redis.call('HDEL', held, id)
end
if ARGV[4] ~= '' then redis.call('ZADD', index, ARGV[4], id) else redis.call('ZREM', index, id) end
if ARGV[5] ~= '' then redis.call('ZADD', due, ARGV[5], id) else redis.call('ZREM', due, id) end
cleanup(quota, held)
return 'ok:' .. (okind or '')
"""
)

_DUE = (
    _LIB
    + """
return redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', int(now_us()), 'WITHSCORES', 'LIMIT', 0, tonumber(ARGV[1]))
"""
)

_SET_QUOTA = """
for i, field in ipairs({'limit', 'max_file'}) do
  if ARGV[i] == '' then redis.call('HDEL', KEYS[1], field) else redis.call('HSET', KEYS[1], field, ARGV[i]) end
end
local q = redis.call('HMGET', KEYS[1], 'limit', 'max_file', 'used', 'reserved')
if not q[1] and not q[2] and (tonumber(q[3]) or 0) == 0 and (tonumber(q[4]) or 0) == 0
   and redis.call('HLEN', KEYS[2]) == 0 then
  redis.call('DEL', KEYS[1])
end
return q
"""


# The global index and its byte count, in the {all} slot: sizes[id] exists only for
# indexed ids, bytes is the sum of sizes (deleted at 0, so nothing is left behind).
_GLOBAL_LIB = """
local index, sizes, bytes = KEYS[1], KEYS[2], KEYS[3]
local function add_bytes(d)
  if d ~= 0 and redis.call('INCRBY', bytes, string.format('%.0f', d)) <= 0 then redis.call('DEL', bytes) end
end
"""

_INDEX_GLOBAL = (
    _GLOBAL_LIB
    + """
redis.call('ZADD', index, ARGV[2], ARGV[1])
if ARGV[3] ~= '' then
  local old = redis.call('HGET', sizes, ARGV[1])
  if old ~= ARGV[3] then
    redis.call('HSET', sizes, ARGV[1], ARGV[3])
    add_bytes(tonumber(ARGV[3]) - (tonumber(old) or 0))
  end
end
return 1
"""
)

_UNINDEX_GLOBAL = (
    _GLOBAL_LIB
    + """
local total = 0
for _, id in ipairs(ARGV) do
  redis.call('ZREM', index, id)
  local s = redis.call('HGET', sizes, id)
  if s then
    redis.call('HDEL', sizes, id)
    total = total + tonumber(s)
  end
end
add_bytes(-total)
return 1
"""
)

_FILL_SIZES = (
    _GLOBAL_LIB
    + """
local total = 0
for i = 1, #ARGV, 2 do
  if redis.call('ZSCORE', index, ARGV[i]) and redis.call('HEXISTS', sizes, ARGV[i]) == 0 then
    redis.call('HSET', sizes, ARGV[i], ARGV[i + 1])
    total = total + tonumber(ARGV[i + 1])
  end
end
add_bytes(total)
return 1
"""
)


def user_key(user: str, what: str) -> str:
    return f"{PREFIX}:{{u:{user}}}:{what}"


def quota_key(user: str) -> str:
    return user_key(user, "quota")


def held_key(user: str) -> str:
    return user_key(user, "held")


def owner_index(user: str) -> str:
    return user_key(user, "files")


def due_key(user: str) -> str:
    return user_key(user, "due")


def user_of_due_key(key: bytes | str) -> str:
    text = key.decode() if isinstance(key, bytes) else key
    return text[len(f"{PREFIX}:{{u:") : -len("}:due")]


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Lease:
    score: int  # the id's due score while the lease holds (unix us)
    fence: int  # the file-slot step must run before this (unix us)


@dataclass(frozen=True)
class Quota:
    limit: int | None  # admin override, None: the default
    max_file: int | None
    used: int
    reserved: int


@dataclass(frozen=True)
class Holding:
    kind: str  # "r" reserved, "c" charged
    bytes: int


@dataclass(frozen=True)
class Stats:
    files: int
    bytes_stored: int
    active_uploads: int


class Ledger:
    """The user-slot and global-slot half of the storage layer (see the module contract)."""

    def __init__(self, client: redis.Redis, *, default_quota: int, default_max_file: int) -> None:
        self.redis = client
        self.default_quota = default_quota
        self.default_max_file = default_max_file
        self._reserve = client.register_script(_RESERVE)
        self._shrink = client.register_script(_SHRINK)
        self._charge = client.register_script(_CHARGE)
        self._lease = client.register_script(_LEASE)
        self._apply = client.register_script(_APPLY)
        self._due = client.register_script(_DUE)
        self._set_quota = client.register_script(_SET_QUOTA)
        self._index_global = client.register_script(_INDEX_GLOBAL)
        self._unindex_global = client.register_script(_UNINDEX_GLOBAL)
        self._fill_sizes = client.register_script(_FILL_SIZES)

    @staticmethod
    def _user_keys(user: str) -> list[str]:
        return [quota_key(user), held_key(user), owner_index(user), due_key(user)]

    # -- quota -----------------------------------------------------------------
    def _refuse(self, result: list, requested: int) -> ApiError:
        status = _text(result[0])
        if status == "too_large":
            return ApiError(
                "payload_too_large", "The upload would exceed the largest file size.", details={"max_file_bytes": int(result[1])}
            )
        if status == "over_quota":
            limit, used, reserved = (int(x) for x in result[1:4])
            return ApiError(
                "quota_exceeded",
                details={"quota_bytes": limit, "used_bytes": used, "reserved_bytes": reserved, "requested_bytes": requested},
            )
        if status == "busy":
            return ApiError("conflict", "The upload is being completed.")
        return ApiError("upload_not_found")

    def reserve(self, user: str, upload_id: str, size: int, *, new: bool, lease: bool = False) -> Lease | None:
        """Reserve ``size`` more bytes for an upload, atomically against the user's quota."""
        args = [upload_id, size, "new" if new else "grow", self.default_quota, self.default_max_file, "1" if lease else "0", LEASE_US]
        result = self._reserve(keys=[quota_key(user), held_key(user), due_key(user)], args=args)
        if _text(result[0]) != "ok":
            raise self._refuse(result, size)
        return Lease(int(result[1]), int(result[2]) + FENCE_US) if lease else None

    def shrink(self, user: str, upload_id: str, size: int) -> None:
        self._shrink(keys=[quota_key(user), held_key(user)], args=[upload_id, size])

    def charge(self, user: str, upload_id: str, size: int, score_ms: int) -> Lease:
        """Turn the upload's reservation into a charge of ``size`` and index the file; take a lease."""
        result = self._charge(keys=self._user_keys(user), args=[upload_id, size, score_ms, self.default_quota, LEASE_US])
        if _text(result[0]) != "ok":
            raise self._refuse(result, size)
        return Lease(int(result[1]), int(result[2]) + FENCE_US)

    def lease(self, user: str, file_id: str) -> Lease:
        score, now = self._lease(keys=[due_key(user)], args=[file_id, LEASE_US])
        return Lease(int(score), int(now) + FENCE_US)

    def apply(self, user: str, file_id: str, *, expected: int | None, held: str | None, index_ms: int | None, due_us: int | None) -> bool:
        """Set the id's holding (``"c:<n>"``, ``"r>=<n>"`` or None), index entry and due time; False when busy."""
        return self.apply_from(user, file_id, expected=expected, held=held, index_ms=index_ms, due_us=due_us) is not None

    def apply_from(
        self, user: str, file_id: str, *, expected: int | None, held: str | None, index_ms: int | None, due_us: int | None
    ) -> str | None:
        """``apply``, returning the kind of holding it replaced (``"r"``, ``"c"`` or ``""``: none); None when busy."""
        args = [
            file_id,
            "" if expected is None else expected,
            held or "",
            "" if index_ms is None else index_ms,
            "" if due_us is None else due_us,
        ]
        result = _text(self._apply(keys=self._user_keys(user), args=args))
        return result[3:] if result.startswith("ok") else None

    def quota(self, user: str) -> Quota:
        limit, max_file, used, reserved = self.redis.hmget(quota_key(user), "limit", "max_file", "used", "reserved")
        return Quota(
            int(limit) if limit is not None else None, int(max_file) if max_file is not None else None, int(used or 0), int(reserved or 0)
        )

    def set_quota(self, user: str, limit: int | None, max_file: int | None) -> None:
        args = ["" if limit is None else limit, "" if max_file is None else max_file]
        self._set_quota(keys=[quota_key(user), held_key(user)], args=args)

    def holding(self, user: str, file_id: str) -> Holding | None:
        raw = self.redis.hget(held_key(user), file_id)
        if raw is None:
            return None
        text = _text(raw)
        return Holding(text[0], int(text[2:]))

    def holdings(self, user: str) -> dict[str, Holding]:
        return {_text(k): Holding(_text(v)[0], int(_text(v)[2:])) for k, v in self.redis.hgetall(held_key(user)).items()}

    # -- due times -------------------------------------------------------------
    def due(self, user: str, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` ids whose due time has come (by Redis's clock), with their due scores."""
        raw = self._due(keys=[due_key(user)], args=[limit])
        return [(_text(raw[i]), int(float(raw[i + 1]))) for i in range(0, len(raw), 2)]

    def due_score(self, user: str, file_id: str) -> int | None:
        score = self.redis.zscore(due_key(user), file_id)
        return int(score) if score is not None else None

    def users_with_due(self) -> Iterator[str]:
        """Every user with a due entry (SCAN MATCH: complete, cheap where chunks are big keys)."""
        for key in self.redis.scan_iter(match=DUE_PATTERN, count=1000, _type="zset"):
            yield user_of_due_key(key)

    def try_sweep_lock(self, seconds: int) -> bool:
        return bool(self.redis.set(SWEEP_LOCK, secrets.token_hex(8), nx=True, ex=max(1, seconds)))

    # -- indexes ---------------------------------------------------------------
    _GLOBAL_KEYS = [ALL_INDEX, ALL_SIZES, ALL_BYTES]

    def index_global(self, file_id: str, score_ms: int, size: int | None = None) -> None:
        """Add the id to the global index with its file's ``size`` (None: not known; the sweep's walk fills it in)."""
        self._index_global(keys=self._GLOBAL_KEYS, args=[file_id, score_ms, "" if size is None else size])

    def unindex_global(self, *file_ids: str) -> None:
        """Drop ids from the global index, and their sizes from the global byte count."""
        if file_ids:
            self._unindex_global(keys=self._GLOBAL_KEYS, args=list(file_ids))

    def upload_started(self, upload_id: str, created_ms: int) -> None:
        """Count an upload in progress (before its file-slot step: over-counts on a crash, never under-counts)."""
        self.redis.zadd(ALL_UPLOADS, {upload_id: created_ms})

    def upload_ended(self, upload_id: str) -> None:
        """The upload is gone (completed, aborted, expired, or never created)."""
        self.redis.zrem(ALL_UPLOADS, upload_id)

    def gc_global(
        self, alive: Callable[[list[str]], list[bool]], batch: int, sizes: Callable[[list[str]], list[int | None]] | None = None
    ) -> int:
        """One step of the walk over the global index: drop entries whose id is neither file nor upload.

        With ``sizes`` (each id's file size, None when it is no file), also count
        the bytes of live files indexed without a size (stored before sizes were kept).
        """
        cursor = int(self.redis.get(GC_CURSOR) or 0)
        cursor, rows = self.redis.zscan(ALL_INDEX, cursor, count=batch)
        ids = [_text(m) for m, _ in rows]
        flags = alive(ids) if ids else []
        dead = [i for i, ok in zip(ids, flags) if not ok]
        self.unindex_global(*dead)
        live = [i for i, ok in zip(ids, flags) if ok]
        if live and sizes is not None:
            unsized = [i for i, known in zip(live, self.redis.hmget(ALL_SIZES, live)) if known is None]
            found = [(i, n) for i, n in zip(unsized, sizes(unsized) if unsized else []) if n is not None]
            if found:
                self._fill_sizes(keys=self._GLOBAL_KEYS, args=[x for pair in found for x in pair])
        self.redis.set(GC_CURSOR, cursor)
        return len(dead)

    # -- counts ----------------------------------------------------------------
    def stats(self, owner: str | None = None) -> Stats:
        """Files, their bytes and uploads in progress: everyone's, or ``owner``'s; a few O(1) reads in one slot."""
        with self.redis.pipeline(transaction=False) as pipe:
            if owner is None:
                pipe.zcard(ALL_INDEX)
                pipe.get(ALL_BYTES)
                pipe.zcard(ALL_UPLOADS)
                files, stored, uploads = pipe.execute()
            else:
                pipe.zcard(owner_index(owner))
                pipe.hget(quota_key(owner), "used")
                pipe.hlen(held_key(owner))
                files, stored, held = pipe.execute()
                uploads = int(held) - int(files)  # held = charged (indexed) + reserved (uploads)
        return Stats(int(files), max(0, int(stored or 0)), max(0, int(uploads)))

    def active_uploads(self) -> int:
        """Uploads in progress, everyone's (ZCARD)."""
        return int(self.redis.zcard(ALL_UPLOADS))

    def page(self, owner: str | None, limit: int, after: tuple[int, str] | None) -> tuple[list[str], tuple[int, str] | None]:
        """Ids newest first, after the (score, id) position ``after``; and the position of the last one when more follow."""
        key = owner_index(owner) if owner is not None else ALL_INDEX
        if after is None:
            rows = self.redis.zrange(key, 0, limit, desc=True, withscores=True)
        else:
            score, member = after
            # Equal scores come in descending member order; resume below ``member``.
            same = self.redis.zrange(key, score, score, desc=True, byscore=True, withscores=True)
            rows = [(m, s) for m, s in same if _text(m) < member]
            if len(rows) <= limit:
                rows += self.redis.zrange(
                    key, f"({score}", "-inf", desc=True, byscore=True, withscores=True, offset=0, num=limit + 1 - len(rows)
                )
        rows = [(_text(m), int(s)) for m, s in rows]
        more = len(rows) > limit
        rows = rows[:limit]
        return [m for m, _ in rows], ((rows[-1][1], rows[-1][0]) if more and rows else None)

    def owner_file_ids(self, owner: str, count: int) -> list[str]:
        return [_text(m) for m in self.redis.zrange(owner_index(owner), 0, count - 1)]
