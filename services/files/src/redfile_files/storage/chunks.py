"""Chunks in slots of their own (tag ``{<id>.<index>}``): the writes, TTLs and deletes the file slot's scripts cannot do.

A Redis Cluster script touches one slot, and a file's chunks are spread over every slot, so each
chunk step here is one command (or the one-key ``chunk_place`` script) per chunk key, many keys a
pipeline (redis-py's cluster pipeline sends each node its own).  The file slot stays the truth:

* **write** (``put``, ``place``): the chunk's bytes go to their key first, only if it is absent (a
  key names its content, so one that is there holds these very bytes: its bytes and TTL are kept),
  with a TTL of ``upload_ttl`` from now, which outlives the upload's deadline as it stands; then the
  file slot's script records the part.  A write the script refuses is deleted (``drop``) when it
  created the key and no record names it; a crash between leaves a key no record names, which its
  TTL removes.
* **deadline** (``extend``): when a script pushed an upload's deadline, its recorded chunks follow
  (``EXPIREAT`` ``GT``: never shortened).
* **completion** (``hold`` before the commit script, ``settle`` after it): every recorded chunk must
  exist and lives at least ``upload_ttl`` more; once the file is visible its chunks lose their TTL
  (or get the file's expiry).  A crash between the two leaves a file whose chunks still expire
  ``upload_ttl`` after the commit: the reconciler, at the commit's lease end, settles them.
* **deletion** (``unlink``): after the file slot's script made a tombstone of the part table.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from typing import Any

import redis
from redis.cluster import RedisCluster

from redfile_common.deadline import DeadlineExceeded
from redfile_common.errors import ApiError
from redfile_common.lua_scripts import Scripts
from redfile_files.checksums import Part
from redfile_files.storage import keys
from redfile_files.storage.records import ChunksUnreachable, text
from redfile_files.storage.staged import StagedChunk

BATCH = 512  # chunk keys per pipeline
# what a cluster client raises for a node it cannot reach (an open breaker is a ConnectionError)
NODE_DOWN = (
    redis.exceptions.ConnectionError,
    redis.exceptions.TimeoutError,
    redis.exceptions.ClusterDownError,
    redis.exceptions.MasterDownError,
    redis.exceptions.SlotNotCoveredError,
)


def keys_of(file_id: str, parts: dict[int, Part] | dict[int, str], layout: str) -> list[str]:
    """The keys of the chunks ``parts`` records (index -> part or record), in ``layout``."""
    return [keys.chunk(file_id, index, part if isinstance(part, str) else part.encode(), layout) for index, part in parts.items()]


def staging_lost() -> ApiError:
    return ApiError("service_unavailable", "The chunk was lost in storage before it was kept; send it again.", headers={"Retry-After": "1"})


class ChunkStore:
    """See the module docstring."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.scripts = Scripts(client, "redfile_files.storage")

    @property
    def ttl_ms(self) -> int:
        return self.upload_ttl * 1000

    def check_holders(self, file_id: str, indices: range) -> None:
        """On a Redis Cluster, one ``EXISTS`` on each primary that holds a chunk of ``indices`` (spread layout), so that
        a primary that is down is known before any chunk is read: ``ChunksUnreachable``.  The name read is one in the
        chunk's slot, not its key (that needs the part record): what matters is that the node answers.  A cluster
        holds the spread layout only (``keys.LEGACY`` was only ever written on one server); elsewhere one server
        holds everything: nothing to check."""
        if not isinstance(self.redis, RedisCluster):
            return
        asked: set[str] = set()
        primaries = len(self.redis.get_primaries())
        try:
            for index in indices:
                if len(asked) >= primaries:
                    return  # every primary answered: the rest of a long file need not be walked
                probe = keys.chunk_key(file_id, index, "c")
                node = self.redis.get_node_from_key(probe)
                if node.name not in asked:
                    asked.add(node.name)
                    self.redis.exists(probe)
        except NODE_DOWN as exc:
            if isinstance(exc, DeadlineExceeded):
                raise  # the request's budget, not the node
            raise ChunksUnreachable(file_id) from exc

    # -- writes ------------------------------------------------------------------------------
    def put(self, key: str, data) -> bool:
        """The chunk's bytes at ``key`` unless it is there; True when this created it."""
        return bool(self.redis.set(key, data, nx=True, px=self.ttl_ms))

    def place(self, staging: str, key: str, staged: StagedChunk | None = None) -> bool:
        """Staged bytes renamed to ``key`` unless it is there (``staged``: its SET ends with this script behind it);
        True when this created it; ``service_unavailable`` when the staged bytes are gone."""
        script, call_keys, args = self.place_call(staging, key)
        result = script(keys=call_keys, args=args) if staged is None else staged.finish(script, call_keys, args)
        return self.placed(result)

    def place_call(self, staging: str, key: str) -> tuple:
        """``chunk_place``'s script, keys and args (for ``StagedChunk.send_end``)."""
        return self.scripts["chunk_place"], [staging, key], [self.ttl_ms]

    @staticmethod
    def placed(result) -> bool:
        if int(result) < 0:
            raise staging_lost()
        return bool(int(result))

    def place_many(self, moves: Sequence[tuple[str, str]]) -> list[bool]:
        """``place`` for each (staging, key), pipelined; raises ``service_unavailable`` if any staged bytes are gone
        (after every other one is in place)."""
        script = self.scripts["chunk_place"]
        results: list = []
        if isinstance(self.redis, RedisCluster):  # redis-py's cluster pipeline refuses scripts: one call each
            results = [script(keys=[staging, key], args=[self.ttl_ms]) for staging, key in moves]
        for start in range(0, len(moves) if not results else 0, BATCH):
            with self.redis.pipeline(transaction=False) as pipe:
                for staging, key in moves[start : start + BATCH]:
                    script(keys=[staging, key], args=[self.ttl_ms], client=pipe)
                results += pipe.execute()
        if any(int(r) < 0 for r in results):
            raise staging_lost()
        return [bool(int(r)) for r in results]

    def put_many(self, items: Sequence[tuple[str, Any]]) -> list[bool]:
        """``put`` for each (key, bytes), pipelined."""
        results = []
        for start in range(0, len(items), BATCH):
            with self.redis.pipeline(transaction=False) as pipe:
                for key, data in items[start : start + BATCH]:
                    pipe.set(key, data, nx=True, px=self.ttl_ms)
                results += pipe.execute()
        return [bool(r) for r in results]

    def drop(self, created: Iterable[str]) -> None:
        """Delete keys a refused write created (no record names them); a key Redis does not delete now expires."""
        with contextlib.suppress(redis.exceptions.RedisError):
            self.unlink(list(created))

    def migrate(self, upload_id: str) -> None:
        """An upload opened before chunks spread (``keys.LEGACY``) moves to ``keys.LAYOUT`` at once: its recorded chunks
        renamed to their own keys (``migrate_upload.lua``, which spans slots: such an upload exists only on the
        standalone Redis it was opened on).  Its writers find it so (a script answers ``layout``) and go on."""
        table = {int(i): text(r) for i, r in self.redis.hgetall(keys.parts(upload_id)).items()}
        old, new = keys_of(upload_id, table, keys.LEGACY), keys_of(upload_id, table, keys.LAYOUT)
        call_keys = [keys.upload(upload_id), keys.parts(upload_id), *old, *new]
        self.scripts["migrate_upload"](keys=call_keys, args=[len(table), keys.LAYOUT])

    # -- TTLs -----------------------------------------------------------------------------------
    def extend(self, chunk_keys: list[str], deadline: int) -> None:
        """An upload's chunks live at least until its ``deadline`` (unix s)."""
        self._each(chunk_keys, lambda pipe, key: pipe.expireat(key, deadline, gt=True))

    def hold(self, chunk_keys: list[str]) -> list[bool]:
        """Before a commit: does each chunk exist?  Each lives at least ``upload_ttl`` more (none loses its no-TTL)."""
        replies = self._each(chunk_keys, lambda pipe, key: (pipe.exists(key), pipe.expire(key, self.upload_ttl, gt=True)))
        return [bool(r) for r in replies[::2]]

    def settle(self, chunk_keys: list[str], expires_ts: int | None) -> None:
        """A file's chunks: no TTL, or the file's expiry (unix s)."""
        if expires_ts:
            self._each(chunk_keys, lambda pipe, key: pipe.expireat(key, expires_ts))
        else:
            self._each(chunk_keys, lambda pipe, key: pipe.persist(key))

    # -- reads and deletes ------------------------------------------------------------------------
    def lengths(self, chunk_keys: list[str]) -> list[int]:
        """The stored length of each chunk (0: missing)."""
        return [int(n) for n in self._each(chunk_keys, lambda pipe, key: pipe.strlen(key))]

    def unlink(self, chunk_keys: list[str]) -> None:
        self._each(chunk_keys, lambda pipe, key: pipe.unlink(key))

    def _each(self, chunk_keys: list[str], command) -> list:
        """``command(pipe, key)`` for every key, ``BATCH`` keys a pipeline; the replies in order."""
        replies: list = []
        for start in range(0, len(chunk_keys), BATCH):
            with self.redis.pipeline(transaction=False) as pipe:
                for key in chunk_keys[start : start + BATCH]:
                    command(pipe, key)
                replies += pipe.execute()
        return replies
