"""Read-only walks over the files service's keys, for the consistency checker.

Every read is a batch (one pipeline per batch of keys or ids) and every walk bounded in memory:
keys come in SCAN batches, hashes and sorted sets in HSCAN/ZSCAN batches, chunk tables in index
ranges.  A reply that is an error (a key of the wrong type) reads as None.  ``snapshot`` of a
hash up to ``ATOMIC_LIMIT`` entries is exact (one MULTI with the values it must agree with);
bigger ones are read in batches.  Nothing here writes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from itertools import islice

import redis

from redfile_files.storage import keys
from redfile_files.storage.keys import Family

SCAN_COUNT = 1000
BATCH = 500  # keys or ids looked up per pipeline
CHUNK_BATCH = 512  # chunks of one file looked up per pipeline
ATOMIC_LIMIT = 5000  # hashes up to this size are read in one MULTI (an exact snapshot)


def batches(items: Iterable, size: int = BATCH) -> Iterator[list]:
    """Lists of up to ``size`` items (of an iterator: a SCAN, HSCAN or ZSCAN), never all of it at once."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def as_text(value) -> str | None:
    """A reply as text; None for a missing value or bytes that are not UTF-8."""
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return str(value)


def as_hash(raw) -> dict[str, str]:
    return {as_text(k) or "": as_text(v) or "" for k, v in raw.items()} if isinstance(raw, dict) else {}


@dataclass(frozen=True)
class ChunkRow:
    index: int
    part: str | None  # the raw part record
    length: int  # STRLEN
    exists: bool
    pttl: int | None


@dataclass(frozen=True)
class HashSnapshot:
    """A user's holdings (or the global sizes) and the counters that must agree with them."""

    values: list  # the counters read with them
    entries: Iterable[tuple]  # (field, value) pairs, in batches when the hash is big


class Inspector:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client

    def _pipe(self, fill: Callable, *, transaction: bool = False) -> list:
        with self.redis.pipeline(transaction=transaction) as p:
            fill(p)
            return [None if isinstance(x, Exception) else x for x in p.execute(raise_on_error=False)]

    def _rows(self, items: list, *commands: Callable) -> list[list]:
        """For each item, the replies of ``commands`` (each ``(pipe, item) -> None``), in one round trip."""
        if not items:
            return []
        flat = self._pipe(lambda p: [command(p, item) for item in items for command in commands])
        n = len(commands)
        return [flat[i * n : (i + 1) * n] for i in range(len(items))]

    # -- the walk over every key ------------------------------------------------------------
    def now_us(self) -> int:
        sec, usec = self.redis.time()
        return int(sec) * 1_000_000 + int(usec)

    def scan_keys(self, count: int = SCAN_COUNT) -> Iterator:
        return self.redis.scan_iter(match=keys.EVERY_KEY, count=count)

    def types(self, names: list[str]) -> list[str | None]:
        return [as_text(t) for t in self._pipe(lambda p: [p.type(k) for k in names])] if names else []

    def pttls(self, names: list[str]) -> list:
        return self._pipe(lambda p: [p.pttl(k) for k in names]) if names else []

    # -- files and uploads ------------------------------------------------------------------------
    def files(self, ids: list[str]) -> list[list]:
        """Per file: [meta, upload exists, parts count, meta's PTTL, parts' PTTL]."""
        return self._rows(
            ids,
            lambda p, i: p.hgetall(keys.meta(i)),
            lambda p, i: p.exists(keys.upload(i)),
            lambda p, i: p.hlen(keys.parts(i)),
            lambda p, i: p.pttl(keys.meta(i)),
            lambda p, i: p.pttl(keys.parts(i)),
        )

    def uploads(self, ids: list[str]) -> list[list]:
        """Per upload: [upload hash, parts count, its PTTL]."""
        return self._rows(
            ids, lambda p, i: p.hgetall(keys.upload(i)), lambda p, i: p.hlen(keys.parts(i)), lambda p, i: p.pttl(keys.upload(i))
        )

    def upload_progress(self, upload_id: str) -> list[str | None]:
        """[received_bytes, updated_at] as they are now (did the upload change while it was read?)."""
        return [as_text(x) for x in self.redis.hmget(keys.upload(upload_id), "received_bytes", "updated_at")]

    def ledger_of(self, pairs: list[tuple[str, str]], *, uploads: bool) -> list[list]:
        """Per (id, owner): [held, in the owner's index, due score, in the global index, global size (files) or
        counted in progress (uploads)]."""
        last = (lambda p, x: p.zscore(keys.ALL_UPLOADS, x[0])) if uploads else (lambda p, x: p.hget(keys.ALL_SIZES, x[0]))
        return self._rows(
            pairs,
            lambda p, x: p.hget(keys.held(x[1]), x[0]),
            lambda p, x: p.zscore(keys.user_files(x[1]), x[0]),
            lambda p, x: p.zscore(keys.due(x[1]), x[0]),
            lambda p, x: p.zscore(keys.ALL_FILES, x[0]),
            last,
        )

    def chunks(self, file_id: str, n: int) -> Iterator[ChunkRow]:
        """Chunks ``0..n-1``: part record, stored length, existence, PTTL (at the key its record and the id's layout
        name); ``CHUNK_BATCH`` per two round trips (the id's slot, then the chunks')."""
        for start in range(0, n, CHUNK_BATCH):
            idx = list(range(start, min(n, start + CHUNK_BATCH)))
            raws, layout = self._table(file_id, idx)
            named = [keys.chunk(file_id, i, raw, layout) for i, raw in zip(idx, raws) if raw]

            def fill(p, named=named):
                for key in named:
                    p.strlen(key)
                    p.exists(key)
                    p.pttl(key)

            res = iter(self._pipe(fill) if named else [])
            for i, raw in zip(idx, raws):
                if not raw:
                    yield ChunkRow(i, None, 0, False, -2)
                    continue
                strlen, exists, ttl = next(res), next(res), next(res)
                yield ChunkRow(i, raw, int(strlen or 0), bool(exists), ttl)

    def _table(self, file_id: str, idx: list[int]) -> tuple[list[str | None], str]:
        """The records of chunks ``idx`` (None: none, or not text) and the id's layout (its file's, else its upload's)."""
        raws, meta, upload = self._pipe(
            lambda p: (
                p.hmget(keys.parts(file_id), idx),
                p.hmget(keys.meta(file_id), "owner", "layout"),
                p.hmget(keys.upload(file_id), "owner", "layout"),
            )
        )
        layout = (meta[1] if meta and meta[0] else upload[1] if upload and upload[0] else None) if meta or upload else None
        return [as_text(raw) for raw in (raws or [None] * len(idx))], as_text(layout) or keys.LEGACY

    def id_keys(self, items: list[tuple[str, Family]]) -> list[list]:
        """Per key of an id: [its file exists, its upload exists, (a legacy chunk) listed in the part table | (else) its
        PTTL]."""
        return self._rows(
            items,
            lambda p, x: p.exists(keys.meta(x[1].tag)),
            lambda p, x: p.exists(keys.upload(x[1].tag)),
            lambda p, x: p.hexists(keys.parts(x[1].tag), x[1].arg) if x[1].part == "chunk" else p.pttl(x[0]),
        )

    def chunk_keys(self, items: list[tuple[str, Family]]) -> list[list]:
        """Per key of a chunk's slot: [its id's part record for its index, the id's layout (its file's, else its
        upload's; None: neither exists), its PTTL] (two round trips: the ids' slots, then the chunks')."""
        named = self._rows(
            items,
            lambda p, x: p.hget(keys.parts(x[1].tag), x[1].arg),
            lambda p, x: p.hmget(keys.meta(x[1].tag), "owner", "layout"),
            lambda p, x: p.hmget(keys.upload(x[1].tag), "owner", "layout"),
        )
        rows = []
        for (raw, meta, upload), ttl in zip(named, self.pttls([key for key, _ in items])):
            layout = (meta[1] or keys.LEGACY) if meta and meta[0] else (upload[1] or keys.LEGACY) if upload and upload[0] else None
            rows.append([as_text(raw), as_text(layout), ttl])
        return rows

    def tombstones(self, items: list[tuple[str, Family]]) -> list[list]:
        """Per tombstone: [its owner, that owner's due score for the id]."""
        owners = [as_text(o) for o in self._pipe(lambda p: [p.hget(key, "owner") for key, _ in items])] if items else []
        scores = self._pipe(lambda p: [p.zscore(keys.due(o or ""), fam.tag) for o, (_, fam) in zip(owners, items)]) if items else []
        return [[o, score if o else None] for o, score in zip(owners, scores)]

    # -- shares and links ------------------------------------------------------------------------
    def list_entries(self, key: str) -> Iterator[list[str]]:
        """The fields of a hash (a file's shares or recipients, a user's links or inbox), in batches."""
        for batch in batches(self.redis.hscan_iter(key, count=SCAN_COUNT)):
            yield [as_text(k) or "" for k, _ in batch]

    def list_pairs(self, key: str) -> Iterator[list[tuple[str, str]]]:
        for batch in batches(self.redis.hscan_iter(key, count=SCAN_COUNT)):
            yield [(as_text(k) or "", as_text(v) or "") for k, v in batch]

    def shares_exist(self, file_id: str, share_ids: list[str]) -> list:
        return self._pipe(lambda p: [p.exists(keys.share(file_id, s)) for s in share_ids])

    def inboxes_hold(self, file_id: str, users: list[str]) -> list:
        return self._pipe(lambda p: [p.hexists(keys.inbox(u), file_id) for u in users])

    def shares(self, pairs: list[tuple[str, str]]) -> list[list]:
        """Per (file id, share id): [the share, its file's owner, listed in the file's shares]."""
        return self._rows(
            pairs,
            lambda p, x: p.hgetall(keys.share(*x)),
            lambda p, x: p.hget(keys.meta(x[0]), "owner"),
            lambda p, x: p.hexists(keys.shares(x[0]), x[1]),
        )

    def share_indexes(self, rows: list[tuple[str, str, str, str]]) -> list[list]:
        """Per (file id, share id, owner, token hash): [the token's lookup, the owner's links entry]."""
        return self._rows(rows, lambda p, x: p.get(keys.link(x[3])), lambda p, x: p.hget(keys.user_links(x[2]), x[1]))

    def link_targets(self, hashes: list[str]) -> list:
        return self._pipe(lambda p: [p.get(keys.link(h)) for h in hashes]) if hashes else []

    def share_tokens(self, pairs: list[tuple[str, str]]) -> list:
        return self._pipe(lambda p: [p.hget(keys.share(f, s), "token_sha256") for f, s in pairs]) if pairs else []

    def link_entries(self, pairs: list[tuple[str, str]]) -> list[list]:
        """Per (share id, file id) of a user's links: [the share's owner, its file exists]."""
        return self._rows(pairs, lambda p, x: p.hget(keys.share(x[1], x[0]), "owner"), lambda p, x: p.exists(keys.meta(x[1])))

    def inbox_entries(self, user: str, pairs: list[tuple[str, str]]) -> list[list]:
        """Per (file id, owner) of a user's inbox: [the file's recipients (account id -> username), the file's owner]."""
        return self._rows(pairs, lambda p, x: p.hgetall(keys.recipients(x[0])), lambda p, x: p.hget(keys.meta(x[0]), "owner"))

    # -- users ---------------------------------------------------------------------------------
    def holdings(self, user: str) -> HashSnapshot:
        """The user's holdings with [used, reserved]: one snapshot when small, else in batches."""
        held, quota = keys.held(user), keys.quota(user)
        if (self.redis.hlen(held) or 0) <= ATOMIC_LIMIT:
            raw, counters = self._pipe(lambda p: (p.hgetall(held), p.hmget(quota, "used", "reserved")), transaction=True)
            return HashSnapshot(list(counters or [None, None]), list((raw or {}).items()))
        return HashSnapshot(list(self.redis.hmget(quota, "used", "reserved")), self.redis.hscan_iter(held, count=SCAN_COUNT))

    def holding_owners(self, user: str, ids: list[str]) -> list[list]:
        """Per id the user holds: [its file's owner, its upload's owner, its due score]."""
        return self._rows(
            ids,
            lambda p, i: p.hget(keys.meta(i), "owner"),
            lambda p, i: p.hget(keys.upload(i), "owner"),
            lambda p, i: p.zscore(keys.due(user), i),
        )

    def index_members(self, key: str) -> Iterator[list[tuple[str, float]]]:
        """The members of a sorted set (a user's file index or due times, a global index), in batches."""
        for batch in batches(self.redis.zscan_iter(key, count=SCAN_COUNT)):
            yield [(as_text(m) or "", s) for m, s in batch]

    def index_holdings(self, user: str, ids: list[str]) -> list[list]:
        """Per id in the user's index: [its holding, its due score]."""
        return self._rows(ids, lambda p, i: p.hget(keys.held(user), i), lambda p, i: p.zscore(keys.due(user), i))

    def due_holdings(self, user: str, ids: list[str]) -> list[list]:
        """Per id due for the user: [held by them, a file or upload exists]."""
        return self._rows(ids, lambda p, i: p.hexists(keys.held(user), i), lambda p, i: p.exists(keys.meta(i), keys.upload(i)))

    def name_entries(self, items: list[tuple[str, str, str]]) -> list[list]:
        """Per (id, owner, its names entry): [the entry in the owner's name index, its size there, its row in flight]."""
        return self._rows(
            items,
            lambda p, x: p.zscore(keys.user_names(x[1]), x[2]),
            lambda p, x: p.zscore(keys.user_sizes(x[1]), keys.index_id(x[0])),
            lambda p, x: p.hget(keys.index_rows(x[1]), x[0]),
        )

    def index_owners(self, user: str, ids: list[str]) -> list[list]:
        """Per id of the user's name or size index or rows: [its meta's owner, folder, name, expires_ts; in the user's
        file index; its due score; its rows in flight]."""
        return self._rows(
            ids,
            lambda p, i: p.hmget(keys.meta(i), "owner", "folder", "name", "expires_ts"),
            lambda p, i: p.zscore(keys.user_files(user), i),
            lambda p, i: p.zscore(keys.due(user), i),
            lambda p, i: p.hget(keys.index_rows(user), i),
        )

    def rows_in_flight(self, user: str) -> Iterator[list[tuple[str, str]]]:
        """The user's rows in flight (id, JSON), in batches."""
        for batch in batches(self.redis.hscan_iter(keys.index_rows(user), count=SCAN_COUNT)):
            yield [(as_text(k) or "", as_text(v) or "") for k, v in batch]

    def due_score(self, user: str, file_id: str):
        return self.redis.zscore(keys.due(user), file_id)

    # -- the global slot -------------------------------------------------------------------------
    def files_exist(self, ids: list[str]) -> list:
        return self._pipe(lambda p: [p.exists(keys.meta(i)) for i in ids])

    def uploads_exist(self, ids: list[str]) -> list:
        return self._pipe(lambda p: [p.exists(keys.upload(i)) for i in ids])

    def global_sizes(self) -> HashSnapshot:
        """Every indexed file's size with [the byte count]: one snapshot when small, else in batches."""
        if (self.redis.hlen(keys.ALL_SIZES) or 0) <= ATOMIC_LIMIT:
            raw, stored = self._pipe(lambda p: (p.hgetall(keys.ALL_SIZES), p.get(keys.ALL_BYTES)), transaction=True)
            return HashSnapshot([stored], list((raw or {}).items()))
        return HashSnapshot([self.redis.get(keys.ALL_BYTES)], self.redis.hscan_iter(keys.ALL_SIZES, count=SCAN_COUNT))

    def globally_indexed(self, ids: list[str]) -> list:
        return self._pipe(lambda p: [p.zscore(keys.ALL_FILES, i) for i in ids])

    def sweep_state(self) -> tuple[int, str | None, bool]:
        """[the sweep lock's PTTL, the walk's cursor, the byte count exists]."""
        ttl, cursor, exists = self._pipe(lambda p: (p.pttl(keys.SWEEP_LOCK), p.get(keys.GC_CURSOR), p.exists(keys.ALL_BYTES)))
        return ttl, as_text(cursor), bool(exists)


__all__ = ["ATOMIC_LIMIT", "BATCH", "SCAN_COUNT", "ChunkRow", "HashSnapshot", "Inspector", "as_hash", "as_text", "batches"]
