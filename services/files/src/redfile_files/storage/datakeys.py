"""Every file's and upload's wrapped data key, walked page by page and swapped one by one (``redfile-rekey``).

The walk SCANs (``TYPE hash``, a page at a time: bounded memory, never ``KEYS``) for
``files:{<id>}:meta`` and ``files:{<id>}:upload`` and reads their ``dek`` fields in one pipeline a
page.  ``swap`` is a compare-and-set in the id's slot: the field changes only if it still holds
what was read; a hash that is gone is never recreated, and nothing else of it (nor its TTL) is
touched.  On a Redis Cluster the walk SCANs each primary in turn (in the order of their names), and
its cursor names the primary too (``NODE_SPAN``): a progress line's cursor resumes it there.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import redis
from redis.cluster import RedisCluster

from redfile_common.lua_scripts import Scripts
from redfile_files.storage import keys
from redfile_files.storage.records import text

_SUFFIXES = (b":meta", b":upload")
# A cluster walk's cursor: the primary's place in the walk times this, plus that primary's SCAN cursor
# (a SCAN cursor stays below the size of the node's hash table, far below 2**48).
NODE_SPAN = 2**48


@dataclass(frozen=True)
class DataKey:
    key: bytes  # the file's meta or the upload's hash
    file_id: str
    wrapped: str | None  # None: the hash is gone (or has no data key field)


@dataclass(frozen=True)
class Page:
    cursor: int  # where the next page starts; 0: the walk is over
    keys: list[DataKey]


class DataKeys:
    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.scripts = Scripts(client, "redfile_files.storage")

    def pages(self, cursor: int, count: int) -> Iterator[Page]:
        """The walk from ``cursor`` (0: the start) to its end, a SCAN page at a time."""
        while True:
            cursor, found = self._scan(cursor, count)
            names = [k if isinstance(k, bytes) else k.encode() for k in found]
            targets = [k for k in names if k.endswith(_SUFFIXES)]
            wrapped: list = []
            if targets:
                with self.redis.pipeline(transaction=False) as pipe:
                    for key in targets:
                        pipe.hget(key, "dek")
                    wrapped = pipe.execute()
            yield Page(int(cursor), [DataKey(k, _file_id(k), None if w is None else text(w)) for k, w in zip(targets, wrapped)])
            if int(cursor) == 0:
                return

    def _scan(self, cursor: int, count: int) -> tuple[int, list]:
        if not isinstance(self.redis, RedisCluster):
            return self.redis.scan(cursor, match=keys.FILE_OR_UPLOAD_HASHES, count=count, _type="hash")
        primaries = sorted(self.redis.get_primaries(), key=lambda node: node.name)
        index, at = divmod(cursor, NODE_SPAN)
        if index >= len(primaries):
            return 0, []
        answer = self.redis.scan(at, match=keys.FILE_OR_UPLOAD_HASHES, count=count, _type="hash", target_nodes=primaries[index])
        cursors, found = answer  # redis-py's cluster SCAN answers ({node: cursor}, keys)
        at = next(iter(cursors.values())) if isinstance(cursors, dict) else cursors
        if int(at) != 0:
            return index * NODE_SPAN + int(at), found
        return (0 if index + 1 == len(primaries) else (index + 1) * NODE_SPAN), found

    def read(self, key: bytes) -> str | None:
        raw = self.redis.hget(key, "dek")
        return None if raw is None else text(raw)

    def swap(self, key: bytes, old: str, new: str) -> str:
        """Compare-and-set of the ``dek`` field: ``ok``, ``gone`` or ``changed``."""
        return text(self.scripts["data_key_swap"](keys=[key], args=[old, new]))


def _file_id(key: bytes) -> str:
    """``files:{<id>}:meta`` -> ``<id>``."""
    return key[len(b"files:{") : key.index(b"}:")].decode()
