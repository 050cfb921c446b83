"""The user slot (tag ``{u:<user>}``) and the global index (tag ``{all}``): quotas, holdings, indexes, due times.

Contract:

* ``held`` records, per id, the bytes an upload has reserved (``r:<n>``) or a file is charged
  (``c:<n>``); the quota's ``reserved`` and ``used`` are their sums, changed only together with
  ``held``, in one script.  ``used + reserved`` counts against the quota, and no interleaving
  of requests on any number of replicas takes it past the limit: each reserve checks and adds
  in one step.
* ``reserve`` refuses with ``quota_exceeded`` or ``payload_too_large`` (the user's largest
  file) and changes nothing; ``charge`` turns an upload's reservation into its file's size and
  indexes it; ``shrink`` gives back what a reservation did not use.
* ``lease`` sets an id's due time to now + ``LEASE_US`` and returns it with the fence (now +
  ``FENCE_US``) its file-slot step must run before; ``reserve(lease=True)`` and ``charge``
  take one too.
* ``apply`` sets an id's holding, index entry and due time, only if the due score is still the
  one the caller saw (else it is busy and changes nothing).
* A user's file index holds exactly the ids ``held`` records as charged, so their counts are
  O(1): files = ZCARD, bytes = ``used``, uploads in progress = HLEN ``held`` - ZCARD.
* The name index (``names``: folder, case-folded name, id) and the size index (``sizes``) follow the
  file index: ``charge`` writes the file's entries, ``apply`` makes them the truth's (the row it is
  given) and removes every other names entry of the id, each of which an operation recorded in
  ``rows`` before it wrote it (``charge``, ``lease`` with rows); a file with an expiry keeps its row
  there, since nothing else would name its entry once its ``meta`` expires.
* The global slot keeps, beside the index, each indexed file's size and their sum (changed in
  the same script as the index), and the set of uploads in progress (added before an upload is
  created, removed after it is gone).  All of it is derived state: the reconciler and the
  sweep's walk set it right (``Lifecycle``).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any, cast

import redis

from redfile_common.errors import ApiError
from redfile_common.lua_scripts import Scripts
from redfile_files.storage import keys
from redfile_files.storage.records import Charged, Holding, IndexRow, Lease, Quota, Reserved, Stats, text

LEASE_US = 120_000_000  # a multi-slot operation's lease
FENCE_US = 60_000_000  # its file-slot step must run within this (the rest is margin for clock skew)
GLOBAL_KEYS = [keys.ALL_FILES, keys.ALL_SIZES, keys.ALL_BYTES]


def _user_keys(user: str) -> list[str]:
    return [keys.quota(user), keys.held(user), keys.user_files(user), keys.due(user), *_index_keys(user)]


def _index_keys(user: str) -> list[str]:
    return [keys.user_names(user), keys.user_sizes(user), keys.index_rows(user)]


def decode_holding(raw) -> Holding | None:
    """A ``held`` value (``r:<n>`` / ``c:<n>``); None for anything else."""
    value = text(raw)
    if len(value) < 3 or value[1] != ":" or not value[2:].isdigit():
        return None
    if value[0] == "r":
        return Reserved(int(value[2:]))
    if value[0] == "c":
        return Charged(int(value[2:]))
    return None


def _refusal(result: list, requested: int) -> ApiError:
    status = text(result[0])
    if status == "too_large":
        return ApiError("payload_too_large", "The upload would exceed the largest file size.", details={"max_file_bytes": int(result[1])})
    if status == "over_quota":
        limit, used, reserved = (int(x) for x in result[1:4])
        details = {"quota_bytes": limit, "used_bytes": used, "reserved_bytes": reserved, "requested_bytes": requested}
        return ApiError("quota_exceeded", details=details)
    if status == "busy":
        return ApiError("conflict", "The upload is being completed.")
    return ApiError("upload_not_found")


class Ledger:
    """The user-slot and global-slot half of the storage layer (see the module contract)."""

    def __init__(self, client: redis.Redis, *, default_quota: int, default_max_file: int) -> None:
        self.redis = client
        self.default_quota = default_quota
        self.default_max_file = default_max_file
        self.scripts = Scripts(client, "redfile_files.storage")

    # -- quota -----------------------------------------------------------------
    def reserve(self, user: str, upload_id: str, size: int, *, new: bool, lease: bool = False) -> Lease | None:
        """Reserve ``size`` more bytes for an upload, atomically against the user's quota."""
        args = [upload_id, size, "new" if new else "grow", self.default_quota, self.default_max_file, "1" if lease else "0", LEASE_US]
        result = self.scripts["reserve"](keys=[keys.quota(user), keys.held(user), keys.due(user)], args=args)
        if text(result[0]) != "ok":
            raise _refusal(result, size)
        return Lease(int(result[1]), int(result[2]) + FENCE_US) if lease else None

    def shrink(self, user: str, upload_id: str, size: int) -> None:
        self.scripts["shrink"](keys=[keys.quota(user), keys.held(user)], args=[upload_id, size])

    def charge(self, user: str, upload_id: str, size: int, score_ms: int, row: IndexRow) -> Lease:
        """Turn the upload's reservation into a charge of ``size`` and index the file (``row`` in flight); take a lease."""
        args = [upload_id, size, score_ms, self.default_quota, LEASE_US, keys.index_id(upload_id), row.json()]
        result = self.scripts["charge"](keys=_user_keys(user), args=args)
        if text(result[0]) != "ok":
            raise _refusal(result, size)
        return Lease(int(result[1]), int(result[2]) + FENCE_US)

    def lease(self, user: str, file_id: str, rows: tuple[IndexRow, ...] = ()) -> Lease:
        """A lease on the id; ``rows``: names entries recorded as in flight and written first (a rename's, a delete's)."""
        pending = "[" + ",".join(r.json() for r in rows) + "]" if rows else ""
        args = [file_id, LEASE_US, keys.index_id(file_id), pending]
        score, now = self.scripts["lease"](keys=[keys.due(user), keys.user_names(user), keys.index_rows(user)], args=args)
        return Lease(int(score), int(now) + FENCE_US)

    def apply(
        self,
        user: str,
        file_id: str,
        *,
        expected: int | None,
        holding: Holding | None,
        index_ms: int | None,
        due_us: int | None,
        row: IndexRow | None = None,
    ) -> str | None:
        """Set the id's holding (a ``Reserved`` is at least that much), index entries and due time.

        Indexed (``index_ms``): under ``row`` in the name index, the holding's bytes in the size index, and
        every other names entry of the id in flight removed; ``row`` is kept in flight when the file expires
        (``due_us``).  The kind of holding it replaced (``"r"``, ``"c"`` or ``""``: none); None when busy (the
        due score is no longer ``expected``)."""
        if index_ms is not None and row is None:
            raise ValueError("an indexed file needs its row")
        kind = "r" if isinstance(holding, Reserved) else "c" if isinstance(holding, Charged) else ""
        args = [file_id, "" if expected is None else expected, kind, holding.bytes if holding is not None else 0]
        args += ["" if index_ms is None else index_ms, "" if due_us is None else due_us]
        args += [keys.index_id(file_id), row.json() if row is not None else "", "1" if due_us is not None else ""]
        result = text(self.scripts["apply"](keys=_user_keys(user), args=args))
        return result[3:] if result.startswith("ok") else None

    def quota(self, user: str) -> Quota:
        limit, max_file, used, reserved = self.redis.hmget(keys.quota(user), "limit", "max_file", "used", "reserved")
        return Quota(
            int(limit) if limit is not None else None, int(max_file) if max_file is not None else None, int(used or 0), int(reserved or 0)
        )

    def set_quota(self, user: str, limit: int | None, max_file: int | None) -> None:
        args = ["" if limit is None else limit, "" if max_file is None else max_file]
        self.scripts["set_quota"](keys=[keys.quota(user), keys.held(user)], args=args)

    def holding(self, user: str, file_id: str) -> Holding | None:
        return decode_holding(self.redis.hget(keys.held(user), file_id))

    def holdings(self, user: str) -> dict[str, Holding | None]:
        return {text(k): decode_holding(v) for k, v in self.redis.hgetall(keys.held(user)).items()}

    # -- due times -------------------------------------------------------------
    def due(self, user: str, limit: int) -> list[tuple[str, int]]:
        """Up to ``limit`` ids whose due time has come (by Redis's clock), with their due scores."""
        raw = self.scripts["due"](keys=[keys.due(user)], args=[limit])
        return [(text(raw[i]), int(float(raw[i + 1]))) for i in range(0, len(raw), 2)]

    def due_score(self, user: str, file_id: str) -> int | None:
        score = self.redis.zscore(keys.due(user), file_id)
        return int(score) if score is not None else None

    def make_due(self, user: str, file_id: str, seen: float | None) -> bool:
        """Make the id due now, unless its due score changed since it was ``seen`` (a compare-and-set)."""
        due = keys.due(user)

        def change(pipe) -> bool:
            if pipe.zscore(due, file_id) != seen:
                return False
            pipe.multi()
            pipe.zadd(due, {file_id: 1})
            return True

        return bool(self.redis.transaction(change, due, value_from_callable=True))  # type: ignore[arg-type]  # redis-py's type has no value_from_callable result

    def users_with_due(self) -> Iterator[str]:
        """Every user with a due entry (SCAN MATCH: complete, cheap where chunks are big keys)."""
        for key in self.redis.scan_iter(match=keys.DUE_PATTERN, count=1000, _type="zset"):
            yield keys.user_of_due_key(key)

    def try_sweep_lock(self, seconds: int) -> bool:
        return bool(self.redis.set(keys.SWEEP_LOCK, secrets.token_hex(8), nx=True, ex=max(1, seconds)))

    # -- indexes ---------------------------------------------------------------
    def index_global(self, file_id: str, score_ms: int, size: int) -> None:
        """Add the id to the global index with its file's size."""
        self.scripts["index_global"](keys=GLOBAL_KEYS, args=[file_id, score_ms, size])

    def unindex_global(self, *file_ids: str) -> None:
        """Drop ids from the global index, and their sizes from the global byte count."""
        if file_ids:
            self.scripts["unindex_global"](keys=GLOBAL_KEYS, args=list(file_ids))

    def upload_started(self, upload_id: str, created_ms: int) -> None:
        """Count an upload in progress (before its file-slot step: over-counts on a crash, never under-counts)."""
        self.redis.zadd(keys.ALL_UPLOADS, {upload_id: created_ms})

    def upload_ended(self, upload_id: str) -> None:
        """The upload is gone (completed, aborted, expired, or never created)."""
        self.redis.zrem(keys.ALL_UPLOADS, upload_id)

    def gc_global(self, alive: Callable[[list[str]], list[bool]], batch: int) -> int:
        """One step of the walk over the global index: drop entries whose id is neither file nor upload."""
        cursor = int(self.redis.get(keys.GC_CURSOR) or 0)
        cursor, rows = self.redis.zscan(keys.ALL_FILES, cursor, count=batch)
        ids = [text(m) for m, _ in cast("list[tuple[bytes, float]]", rows)]
        flags = alive(ids) if ids else []
        self.unindex_global(*[i for i, ok in zip(ids, flags) if not ok])
        self.redis.set(keys.GC_CURSOR, cursor)
        return len(ids) - sum(flags)

    # -- counts ----------------------------------------------------------------
    def stats(self, owner: str | None = None) -> Stats:
        """Files, their bytes and uploads in progress: everyone's, or ``owner``'s; a few O(1) reads in one slot."""
        with self.redis.pipeline(transaction=False) as pipe:
            if owner is None:
                pipe.zcard(keys.ALL_FILES)
                pipe.get(keys.ALL_BYTES)
                pipe.zcard(keys.ALL_UPLOADS)
                files, stored, uploads = pipe.execute()
            else:
                pipe.zcard(keys.user_files(owner))
                pipe.hget(keys.quota(owner), "used")
                pipe.hlen(keys.held(owner))
                files, stored, held = pipe.execute()
                uploads = int(held) - int(files)  # held = charged (indexed) + reserved (uploads)
        return Stats(int(files), max(0, int(stored or 0)), max(0, int(uploads)))

    def active_uploads(self) -> int:
        """Uploads in progress, everyone's (ZCARD)."""
        return int(self.redis.zcard(keys.ALL_UPLOADS))

    def page(self, owner: str | None, limit: int, after: tuple[int, str] | None) -> tuple[list[str], tuple[int, str] | None]:
        """Ids newest first, after the (score, id) position ``after``; and the position of the last one when more follow."""
        key = keys.user_files(owner) if owner is not None else keys.ALL_FILES
        rows: list[Any]
        if after is None:
            rows = cast("list[Any]", self.redis.zrange(key, 0, limit, desc=True, withscores=True))
        else:
            score, member = after
            # Equal scores come in descending member order; resume below ``member``.
            same = cast("list[Any]", self.redis.zrange(key, score, score, desc=True, byscore=True, withscores=True))
            rows = [(m, s) for m, s in same if text(m) < member]
            if len(rows) <= limit:
                older = self.redis.zrange(
                    key, f"({score}", "-inf", desc=True, byscore=True, withscores=True, offset=0, num=limit + 1 - len(rows)
                )
                rows += cast("list[Any]", older)
        found = [(text(m), int(s)) for m, s in rows]
        more = len(found) > limit
        found = found[:limit]
        return [m for m, _ in found], ((found[-1][1], found[-1][0]) if more and found else None)

    def owner_file_ids(self, owner: str, count: int) -> list[str]:
        members = cast("list[bytes]", self.redis.zrange(keys.user_files(owner), 0, count - 1))
        return [text(m) for m in members]
