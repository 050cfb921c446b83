"""The files service's Redis storage: the only code of the service that talks to Redis.

Key spaces (owner: files service; ``{id}`` is written literally with its braces,
so it is the Redis Cluster hash tag and every key of one file lives in one slot):

=================================  ============  ==============================================
key                                type          holds / TTL
=================================  ============  ==============================================
``files:upload:{id}``              hash          an upload in progress: owner, total_chunks,
                                                 created_at, updated_at, received_bytes,
                                                 deadline (unix s).  TTL <= upload_ttl.
``files:upload:{id}:parts``        hash          chunk index -> "size:sha256hex".
                                                 TTL <= upload_ttl.
``files:chunk:{id}:<index>``       string        the chunk's raw bytes (no base64).  TTL <=
                                                 upload_ttl while uploading; none once the
                                                 upload is completed.
``files:meta:{id}``                hash          a file: id, name, size, owner, created_at,
                                                 updated_at, mime_type, sha256, kind,
                                                 total_chunks.  No TTL.
``files:owner:<username>``         sorted set    the user's file ids, score = created ms.
``files:all``                      sorted set    every file id, score = created ms.
=================================  ============  ==============================================

Contract:

* ``put_chunk`` is one Lua script: it checks that the upload exists and belongs
  to ``owner`` (else ``upload_not_found``), that ``total_chunks`` matches
  (else ``invalid_chunk``), that a chunk already stored at the index has the
  same size and SHA-256 (a repeat is a no-op; a different one is
  ``chunk_conflict``) and that the upload stays under ``max_file_bytes``
  (else ``payload_too_large``); only then does it write.  A rejected write
  changes nothing.
* All keys of an upload share one deadline (``deadline`` in the upload hash,
  set with EXPIREAT from Redis's own clock).  Activity more than a tenth of
  ``upload_ttl`` after the deadline was last set moves every key's deadline to
  now + ``upload_ttl``; an abandoned upload therefore leaves nothing behind,
  at most ``upload_ttl`` and at least 0.9 x ``upload_ttl`` after its last
  request.
* ``commit_upload`` is one Lua script: the file's meta and both index entries
  appear together, the chunks lose their TTL and the upload state is
  deleted; or, when a chunk is missing or the sizes do not add up, nothing
  changes and the upload can still be finished.
* ``delete`` removes the meta, every chunk and both index entries in one
  MULTI (WATCHing the meta); ``rename`` changes name and updated_at only if
  the file still exists.
* Redis must run with ``maxmemory-policy noeviction``: an evicted chunk of a
  stored file cannot be recovered (``iter_chunks`` raises ``ChunkMissing``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import redis

from redfile_common.errors import ApiError

PREFIX = "files"
ALL_INDEX = f"{PREFIX}:all"
MISSING_LIMIT = 100
_DELETE_BATCH = 1000

_PUT_CHUNK = """
local upload, parts, chunk = KEYS[1], KEYS[2], KEYS[3]
local owner, total, index, part = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local size, ttl, create, now_iso = tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7], ARGV[8]
local max_bytes, chunk_prefix = tonumber(ARGV[9]), ARGV[10]
local now = tonumber(redis.call('TIME')[1])
local received, deadline, old = 0, now + ttl, false
if create == '1' then
  if redis.call('EXISTS', upload) == 1 then return {'exists'} end
else
  local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes', 'deadline')
  if not u[1] or u[1] ~= owner then return {'not_found'} end
  if u[2] ~= total then return {'total_mismatch', u[2]} end
  received, deadline = tonumber(u[3]), tonumber(u[4])
  old = redis.call('HGET', parts, index)
  if old and redis.call('EXISTS', chunk) == 0 then
    -- the part's bytes are gone (evicted): take the new copy instead
    received = received - tonumber(string.match(old, '^(%d+):'))
    old = false
  end
end
if old then
  if old ~= part then return {'conflict'} end
elseif received + size > max_bytes then
  return {'too_large', received}
end
if create == '1' then
  redis.call('HSET', upload, 'owner', owner, 'total_chunks', total, 'created_at', now_iso,
             'received_bytes', 0, 'deadline', deadline)
end
if deadline - now < ttl * 0.9 then
  deadline = now + ttl
  redis.call('HSET', upload, 'deadline', deadline)
  for _, i in ipairs(redis.call('HKEYS', parts)) do
    redis.call('EXPIREAT', chunk_prefix .. i, deadline)
  end
end
if not old then
  redis.call('SET', chunk, ARGV[11], 'EXAT', deadline)
  redis.call('HSET', parts, index, part)
  received = received + size
  redis.call('HSET', upload, 'received_bytes', received)
end
redis.call('HSET', upload, 'updated_at', now_iso)
redis.call('EXPIREAT', upload, deadline)
redis.call('EXPIREAT', parts, deadline)
return {old and 'unchanged' or 'stored', redis.call('HLEN', parts), received}
"""

_COMMIT = """
local upload, parts, meta, owner_index, all_index = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
local owner, total, size, score, id, chunk_prefix = ARGV[1], ARGV[2], ARGV[3], ARGV[4], ARGV[5], ARGV[6]
local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes')
if not u[1] or u[1] ~= owner or u[2] ~= total then return {'not_found'} end
if redis.call('EXISTS', meta) == 1 then return {'exists'} end
local n = tonumber(total)
local missing, count = {}, 0
for i = 0, n - 1 do
  if redis.call('HEXISTS', parts, i) == 0 or redis.call('EXISTS', chunk_prefix .. i) == 0 then
    count = count + 1
    if count <= tonumber(ARGV[7]) then missing[count] = i end
  end
end
if count > 0 then return {'missing', count, missing} end
if tonumber(u[3]) ~= tonumber(size) then return {'size', tonumber(u[3])} end
for i = 0, n - 1 do redis.call('PERSIST', chunk_prefix .. i) end
redis.call('HSET', meta, unpack(ARGV, 8))
redis.call('ZADD', owner_index, score, id)
redis.call('ZADD', all_index, score, id)
redis.call('DEL', upload, parts)
return {'ok'}
"""


class ChunkMissing(Exception):
    """A chunk a file or completed upload needs is not in Redis."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"chunk {index} is missing")


@dataclass(frozen=True)
class ChunkWrite:
    stored: bool  # False: the same chunk was already there
    received_chunks: int
    received_bytes: int


@dataclass(frozen=True)
class UploadState:
    owner: str
    total_chunks: int
    received_chunks: int
    received_bytes: int


def upload_key(file_id: str) -> str:
    return f"{PREFIX}:upload:{{{file_id}}}"


def parts_key(file_id: str) -> str:
    return f"{upload_key(file_id)}:parts"


def chunk_prefix(file_id: str) -> str:
    return f"{PREFIX}:chunk:{{{file_id}}}:"


def chunk_key(file_id: str, index: int) -> str:
    return f"{chunk_prefix(file_id)}{index}"


def meta_key(file_id: str) -> str:
    return f"{PREFIX}:meta:{{{file_id}}}"


def owner_index(owner: str) -> str:
    return f"{PREFIX}:owner:{owner}"


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def _decode_meta(raw: dict) -> dict | None:
    if not raw:
        return None
    meta = {_text(k): _text(v) for k, v in raw.items()}
    for field in ("size", "total_chunks"):
        meta[field] = int(meta.get(field, 0))
    return meta


class FileStore:
    """Uploads, chunks, file metadata and the per-owner and global indexes, in Redis."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self._put_chunk = client.register_script(_PUT_CHUNK)
        self._commit = client.register_script(_COMMIT)

    # -- uploads -------------------------------------------------------------
    def put_chunk(
        self, upload_id: str, *, owner: str, total_chunks: int, index: int, data: bytes, sha256: str, create: bool, now_iso: str
    ) -> ChunkWrite:
        """Store one chunk (creating the upload when ``create``); see the module contract."""
        keys = [upload_key(upload_id), parts_key(upload_id), chunk_key(upload_id, index)]
        args = [
            owner, total_chunks, index, f"{len(data)}:{sha256}", len(data), self.upload_ttl,
            "1" if create else "0", now_iso, self.max_file_bytes, chunk_prefix(upload_id), data,
        ]  # fmt: skip
        result = self._put_chunk(keys=keys, args=args)
        status = _text(result[0])
        if status in ("stored", "unchanged"):
            return ChunkWrite(stored=status == "stored", received_chunks=int(result[1]), received_bytes=int(result[2]))
        if status == "not_found":
            raise ApiError("upload_not_found")
        if status == "conflict":
            raise ApiError("chunk_conflict", details={"chunk_index": index})
        if status == "total_mismatch":
            raise ApiError(
                "invalid_chunk",
                "total_chunks differs from the upload's declared total.",
                details={"total_chunks": int(result[1])},
            )
        if status == "too_large":
            raise ApiError(
                "payload_too_large",
                "The upload would exceed the largest file size.",
                details={"max_file_bytes": self.max_file_bytes, "received_bytes": int(result[1])},
            )
        raise ApiError("conflict", "An upload with this id already exists.")

    def get_upload(self, upload_id: str) -> UploadState | None:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(upload_key(upload_id), "owner", "total_chunks", "received_bytes")
            pipe.hlen(parts_key(upload_id))
            (owner, total, received), count = pipe.execute()
        if owner is None or total is None:
            return None
        return UploadState(_text(owner), int(total), int(count), int(received or 0))

    def missing_chunks(self, upload_id: str, total_chunks: int) -> list[int]:
        """Indices below ``total_chunks`` with no stored part (reads the whole parts hash)."""
        present = {int(i) for i in self.redis.hkeys(parts_key(upload_id))}
        return [i for i in range(total_chunks) if i not in present]

    def commit_upload(self, upload_id: str, *, owner: str, meta: dict, created_ms: int) -> None:
        """Turn a complete upload into the file ``meta`` atomically; see the module contract."""
        keys = [upload_key(upload_id), parts_key(upload_id), meta_key(upload_id), owner_index(owner), ALL_INDEX]
        args = [owner, meta["total_chunks"], meta["size"], created_ms, upload_id, chunk_prefix(upload_id), MISSING_LIMIT]
        for field, value in meta.items():
            args += [field, value]
        result = self._commit(keys=keys, args=args)
        status = _text(result[0])
        if status == "ok":
            return
        if status == "missing":
            raise ApiError(
                "upload_incomplete",
                details={"missing": [int(i) for i in result[2]], "missing_count": int(result[1])},
            )
        if status == "size":
            raise ApiError("size_mismatch", details={"declared": int(meta["size"]), "stored": int(result[1])})
        if status == "exists":
            raise ApiError("conflict", "This upload was already completed.")
        raise ApiError("upload_not_found")

    # -- chunks --------------------------------------------------------------
    def iter_chunks(self, file_id: str, total_chunks: int, *, ahead: int = 2) -> Iterator[bytes]:
        """Yield the chunks in order, one GET each, ``ahead`` GETs per round trip (so at most
        ``ahead`` chunks are held in memory); raise ``ChunkMissing`` for a missing one."""
        for start in range(0, total_chunks, ahead):
            indices = range(start, min(start + ahead, total_chunks))
            with self.redis.pipeline(transaction=False) as pipe:
                for index in indices:
                    pipe.get(chunk_key(file_id, index))
                batch = pipe.execute()
            for index, data in zip(indices, batch):
                if data is None:
                    raise ChunkMissing(index)
                yield data
            del batch

    # -- files ---------------------------------------------------------------
    def get_meta(self, file_id: str) -> dict | None:
        return _decode_meta(self.redis.hgetall(meta_key(file_id)))

    def get_metas(self, file_ids: list[str]) -> list[dict | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.hgetall(meta_key(file_id))
            return [_decode_meta(raw) for raw in pipe.execute()]

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

    def rename(self, file_id: str, name: str, now_iso: str) -> bool:
        """Set name and updated_at if the file exists; False when it does not."""
        key = meta_key(file_id)

        def change(pipe) -> bool:
            if not pipe.exists(key):
                return False
            pipe.multi()
            pipe.hset(key, mapping={"name": name, "updated_at": now_iso})
            return True

        return self.redis.transaction(change, key, value_from_callable=True)

    def delete(self, file_id: str, *, only_owner: str | None = None) -> bool:
        """Remove the file's meta, chunks and index entries at once; False when there is no such file.

        With ``only_owner`` the file is deleted only if that user owns it, and a
        stale entry for it in that user's index is dropped in any case.
        """
        key = meta_key(file_id)

        def remove(pipe) -> bool:
            owner, total = pipe.hmget(key, "owner", "total_chunks")
            owner = _text(owner) if owner is not None else None
            pipe.multi()
            if only_owner is not None:
                pipe.zrem(owner_index(only_owner), file_id)
            if owner is None or (only_owner is not None and owner != only_owner):
                if owner is None:
                    pipe.zrem(ALL_INDEX, file_id)
                return False
            chunks = [chunk_key(file_id, i) for i in range(int(total or 0))]
            pipe.unlink(key, *chunks[:_DELETE_BATCH])
            for start in range(_DELETE_BATCH, len(chunks), _DELETE_BATCH):
                pipe.unlink(*chunks[start : start + _DELETE_BATCH])
            pipe.zrem(owner_index(owner), file_id)
            pipe.zrem(ALL_INDEX, file_id)
            return True

        return self.redis.transaction(remove, key, value_from_callable=True)
