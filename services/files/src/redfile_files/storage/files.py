"""The file slot: an upload's or a file's keys (tag ``{<id>}``), one script per write.

Contract of ``FileStore``:

* ``create_upload`` and ``put_chunk`` with ``create`` refuse (``Late``) after their fence, and
  refuse an id that exists.  ``put_chunk`` checks owner, index, the chunk's size (sessions: the
  chunk size, the last one the rest) or the upload's ``total_chunks`` (seed uploads), that a
  chunk already at the index has the same part record (a repeat changes nothing; other bytes:
  ``chunk_conflict``) and the largest file; only then does it write, and the chunk is
  acknowledged only after Redis answered.  A refused write changes nothing.
* All keys of an upload share one deadline (from Redis's clock); a request more than a tenth of
  ``upload_ttl`` after it was last set moves every key to now + ``upload_ttl``.
* ``commit`` (fenced) turns a complete upload into a file at once, or changes nothing when a
  chunk is missing or the sizes do not add up.  ``abort`` and ``delete_file`` (fenced) remove
  every key of the upload or file.  ``snapshot`` reads meta and upload in one MULTI.
* Redis must run with ``maxmemory-policy noeviction``: an evicted chunk of a stored file cannot
  be recovered (reads raise ``ChunkMissing``).
"""

from __future__ import annotations

from collections.abc import Iterable

import redis

from redfile_common.errors import ApiError
from redfile_common.lua_scripts import Scripts
from redfile_files.checksums import Part
from redfile_files.records import MISSING_LIMIT
from redfile_files.storage import keys
from redfile_files.storage.records import ChunkWrite, NewUpload, Snapshot, UploadState, decode_meta, decode_parts, decode_upload, flat, text
from redfile_files.storage.staged import STAGING_TTL, StagedChunk, unlink_quietly

READ_PIECE = 1024 * 1024  # bytes per GETRANGE when a chunk is read back


class Late(Exception):
    """A fenced step ran after its lease's fence: it changed nothing."""


class FileStore:
    """Uploads, chunks and file metadata in Redis: the keys of one id, in one slot."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self.scripts = Scripts(client, "redfile_files.storage")

    # -- uploads -------------------------------------------------------------
    def create_upload(self, upload_id: str, upload: NewUpload, *, not_after_us: int) -> int:
        """Create an upload (fenced); its deadline (unix s)."""
        result = self.scripts["create_upload"](
            keys=[keys.upload(upload_id), keys.meta(upload_id)], args=[not_after_us, self.upload_ttl, *flat(upload.fields())]
        )
        status = text(result[0])
        if status == "ok":
            return int(result[1])
        if status == "late":
            raise Late()
        raise ApiError("conflict", "An upload with this id already exists.")

    def stage(self, upload_id: str, index: int, size: int) -> StagedChunk:
        """A staged ``SET`` of chunk ``index``, its ``size`` bytes streamed in; then ``put_chunk(staged=...)``."""
        return StagedChunk(self.redis, keys.incoming(upload_id, index), size)

    def put_chunk(
        self,
        upload_id: str,
        *,
        owner: str,
        index: int,
        data,
        part: Part,
        now_iso: str,
        total_chunks: int | None = None,
        create: NewUpload | None = None,
        not_after_us: int = 0,
        staged: StagedChunk | None = None,
    ) -> ChunkWrite:
        """Store one chunk's stored bytes ``data`` whose plaintext is ``part``; see the module contract.

        ``create`` opens a seed upload with this chunk (fenced by ``not_after_us``); ``total_chunks``
        is the seed client's claim, checked against the upload's.  ``staged``: the bytes are in this
        staged ``SET`` (``stage``), whose end goes with the script in one round trip, and ``data`` is
        ignored.
        """
        if staged is None:
            staging = keys.incoming(upload_id, index)
            self.redis.set(staging, data, ex=STAGING_TTL)  # the bytes, once, straight into the value they become
        else:
            staging = staged.key
        script = self.scripts["put_chunk"]
        call_keys = [keys.upload(upload_id), keys.parts(upload_id), keys.chunk(upload_id, index), keys.meta(upload_id), staging]
        args = [owner, index, part.encode(), part.size, self.upload_ttl, now_iso, keys.chunk_prefix(upload_id), self.max_file_bytes]
        args += ["" if total_chunks is None else total_chunks, "" if create is None else not_after_us]
        args += flat(create.fields()) if create is not None else []
        try:
            result = script(keys=call_keys, args=args) if staged is None else staged.finish(script, call_keys, args)
        except redis.exceptions.ResponseError:  # e.g. OOM: the script refused or stopped; the staged bytes go now, not in 60 s
            unlink_quietly(self.redis, staging)
            raise
        status = text(result[0])
        if status in ("stored", "unchanged"):
            return ChunkWrite(status == "stored", int(result[1]), int(result[2]), int(result[3]))
        raise _chunk_refused(status, result, index, part, self.max_file_bytes)

    def get_upload(self, upload_id: str) -> UploadState | None:
        with self.redis.pipeline(transaction=False) as pipe:
            prefetch_upload(pipe, upload_id)
            return read_upload(upload_id, pipe.execute())

    def get_part(self, file_id: str, index: int) -> Part | None:
        raw = self.redis.hget(keys.parts(file_id), index)
        return Part.decode(raw) if raw else None

    def parts(self, file_id: str) -> dict[int, Part]:
        """The whole part table (an upload's received chunks, or a file's chunk table)."""
        return decode_parts(self.redis.hgetall(keys.parts(file_id)))

    def chunk_lengths(self, file_id: str, indices: Iterable[int]) -> list[int]:
        """The stored length of each chunk (0: missing), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for index in indices:
                pipe.strlen(keys.chunk(file_id, index))
            return [int(n) for n in pipe.execute()]

    def missing_chunks(self, upload_id: str, total_chunks: int) -> list[int]:
        """Indices below ``total_chunks`` with no stored part (reads the whole parts hash)."""
        present = {int(i) for i in self.redis.hkeys(keys.parts(upload_id))}
        return [i for i in range(total_chunks) if i not in present]

    def commit(
        self, upload_id: str, *, owner: str, total_chunks: int, size: int, meta: dict, expires_ts: int | None, not_after_us: int
    ) -> None:
        """Turn a complete upload into the file ``meta`` atomically (fenced); see the module contract."""
        call_keys = [keys.upload(upload_id), keys.parts(upload_id), keys.meta(upload_id)]
        args = [owner, not_after_us, total_chunks, size, keys.chunk_prefix(upload_id), expires_ts or 0, MISSING_LIMIT, *flat(meta)]
        result = self.scripts["commit"](keys=call_keys, args=args)
        status = text(result[0])
        if status == "ok":
            return
        if status == "missing":
            raise ApiError("upload_incomplete", details={"missing": [int(i) for i in result[2]], "missing_count": int(result[1])})
        if status == "size":
            raise ApiError("size_mismatch", details={"declared": size, "stored": int(result[1])})
        if status == "exists":
            raise ApiError("conflict", "This upload was already completed.")
        if status == "late":
            raise Late()
        raise ApiError("upload_not_found")

    def abort(self, upload_id: str, *, owner: str, not_after_us: int) -> None:
        """Remove every key of the upload (fenced); ``upload_not_found`` when it is not ``owner``'s."""
        call_keys = [keys.upload(upload_id), keys.parts(upload_id)]
        result = self.scripts["abort"](keys=call_keys, args=[owner, not_after_us, keys.chunk_prefix(upload_id)])
        status = text(result[0])
        if status == "late":
            raise Late()
        if status != "ok":
            raise ApiError("upload_not_found")

    # -- files ---------------------------------------------------------------
    def delete_file(self, file_id: str, *, not_after_us: int, only_owner: str | None = None) -> tuple[str, int] | None:
        """Remove meta, part table and chunks at once (fenced); (owner, size), or None when there is no such file."""
        call_keys = [keys.meta(file_id), keys.parts(file_id)]
        result = self.scripts["delete_file"](keys=call_keys, args=[not_after_us, keys.chunk_prefix(file_id), only_owner or ""])
        status = text(result[0])
        if status == "late":
            raise Late()
        if status != "ok":
            return None
        return text(result[1]), int(result[2])

    def snapshot(self, file_id: str) -> Snapshot:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(keys.meta(file_id))
            pipe.hgetall(keys.upload(file_id))
            pipe.hlen(keys.parts(file_id))
            meta, upload, count = pipe.execute()
        return Snapshot(decode_meta(meta), decode_upload(file_id, upload, int(count)) if upload else None)

    def alive(self, file_ids: list[str]) -> list[bool]:
        """For each id: does a file or an upload with it exist?"""
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.exists(keys.meta(file_id), keys.upload(file_id))
            return [bool(n) for n in pipe.execute()]

    def file_sizes(self, file_ids: list[str]) -> list[int | None]:
        """For each id: its file's size, or None when there is no such file."""
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.hget(keys.meta(file_id), "size")
            return [int(raw) if raw is not None else None for raw in pipe.execute()]

    def get_meta(self, file_id: str) -> dict | None:
        return decode_meta(self.redis.hgetall(keys.meta(file_id)))

    def get_metas(self, file_ids: list[str]) -> list[dict | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.hgetall(keys.meta(file_id))
            return [decode_meta(raw) for raw in pipe.execute()]

    def fetch_chunk(self, file_id: str, index: int) -> tuple[bytes | None, Part | None]:
        """A chunk's stored bytes (None: missing) and its part record, read atomically with each other."""
        pieces, part = self.fetch_chunk_pieces(file_id, index)
        return (None if pieces is None else b"".join(pieces)), part  # one piece: join hands it back uncopied

    def fetch_chunk_pieces(self, file_id: str, index: int) -> tuple[list[bytes] | None, Part | None]:
        """``fetch_chunk``, the bytes as the ``READ_PIECE`` pieces they were read in (a download sends them on unjoined).

        The first piece, the length and the record come in one round trip; a longer chunk's other
        pieces in a MULTI that also checks that length and record did not change in between (a
        tus append rewrites its last chunk): if they did, the chunk is read again.  A reply of a
        whole 8 MiB chunk is read about half as fast per byte as 1 MiB pieces.
        """
        key, parts = keys.chunk(file_id, index), keys.parts(file_id)
        for _ in range(3):
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.getrange(key, 0, READ_PIECE - 1)
                pipe.hget(parts, index)
                pipe.strlen(key)
                pipe.exists(key)  # STRLEN is 0 for a missing key and an empty chunk alike
                first, raw_part, size, exists = pipe.execute()
            part = Part.decode(raw_part) if raw_part else None
            if not exists:
                return None, part
            if size <= READ_PIECE:
                return [first], part
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.strlen(key)
                pipe.hget(parts, index)
                for start in range(READ_PIECE, size, READ_PIECE):
                    pipe.getrange(key, start, min(start + READ_PIECE, size) - 1)
                again, raw_again, *rest = pipe.execute()
            if again == size and raw_again == raw_part:
                return [first, *rest], part
        with self.redis.pipeline(transaction=True) as pipe:  # still changing: the whole value in one reply
            pipe.get(key)
            pipe.hget(parts, index)
            data, raw_part = pipe.execute()
        return ([data] if data is not None else None), Part.decode(raw_part) if raw_part else None

    def rename(self, file_id: str, name: str, now_iso: str) -> bool:
        """Set name and updated_at if the file exists; False when it does not."""
        key = keys.meta(file_id)

        def change(pipe) -> bool:
            if not pipe.exists(key):
                return False
            pipe.multi()
            pipe.hset(key, mapping={"name": name, "updated_at": now_iso})
            return True

        return bool(self.redis.transaction(change, key, value_from_callable=True))  # type: ignore[arg-type]  # redis-py's type has no value_from_callable result


# -- a request's first reads, sent with its token check (``login_required(reads=...)``) ------------------
def prefetch_meta(pipe, file_id: str) -> None:
    """A file's meta, read in the token check's round trip; ``read_meta`` decodes the reply."""
    pipe.hgetall(keys.meta(file_id))


def read_meta(replies: list) -> dict | None:
    return decode_meta(replies[0])


def prefetch_upload(pipe, upload_id: str, *, parts: bool = False) -> None:
    """An upload (with ``parts``, its part table too), read in the token check's round trip; ``read_upload`` decodes it."""
    pipe.hgetall(keys.upload(upload_id))
    pipe.hlen(keys.parts(upload_id))
    if parts:
        pipe.hgetall(keys.parts(upload_id))


def read_upload(upload_id: str, replies: list) -> UploadState | None:
    raw, count = replies[:2]
    return decode_upload(upload_id, raw, int(count)) if raw else None


def read_parts(replies: list) -> dict[int, Part] | None:
    """The part table ``prefetch_upload(parts=True)`` read, or None when it was not read."""
    return decode_parts(replies[2]) if len(replies) > 2 else None


def _chunk_refused(status: str, result: list, index: int, part: Part, max_file_bytes: int) -> Exception:
    """What the client is told when ``put_chunk``'s script refused the chunk."""
    if status == "staging_lost":  # a staged SET Redis refused without an error reply, or evicted before the script
        return ApiError(
            "service_unavailable", "The chunk was lost in storage before it was kept; send it again.", headers={"Retry-After": "1"}
        )
    if status == "not_found":
        return ApiError("upload_not_found")
    if status == "conflict":
        return ApiError("chunk_conflict", details={"chunk_index": index})
    if status == "total_mismatch":
        return ApiError("invalid_chunk", "total_chunks differs from the upload's declared total.", details={"total_chunks": int(result[1])})
    if status == "bad_index":
        return ApiError("invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": int(result[1])})
    if status == "bad_size":
        return ApiError(
            "invalid_chunk",
            "The chunk's size is not the one this index must have.",
            details={"chunk_index": index, "expected_size": int(result[1]), "size": part.size},
        )
    if status == "too_large":
        return ApiError(
            "payload_too_large",
            "The upload would exceed the largest file size.",
            details={"max_file_bytes": max_file_bytes, "received_bytes": int(result[1])},
        )
    if status == "late":
        return Late()
    return ApiError("conflict", "An upload with this id already exists.")


__all__ = ["READ_PIECE", "FileStore", "Late", "prefetch_meta", "prefetch_upload", "read_meta", "read_parts", "read_upload"]
