"""The file slot: an upload's or a file's keys (tag ``{<id>}``), one script per write.

Contract of ``FileStore``:

* ``create_upload`` and ``put_chunk`` with ``create`` refuse (``Late``) after their fence, and
  refuse an id that exists.  ``put_chunk`` checks owner, index, the chunk's size (sessions: the
  chunk size, the last one the rest) or the upload's ``total_chunks`` (seed uploads), that a
  chunk already at the index has the same part record (a repeat changes nothing; other bytes:
  ``chunk_conflict``) and the largest file; only then does it write, and the chunk is
  acknowledged only after Redis answered.  A refused write changes nothing.
* An upload's hash and part table share one deadline (from Redis's clock); a request more than a
  tenth of ``upload_ttl`` after it was last set moves it to now + ``upload_ttl``, and its chunks
  (in slots of their own: ``storage.chunks``) follow it.
* ``commit`` (fenced) turns a complete upload into a file at once, or changes nothing when a
  chunk is missing or the sizes do not add up.  ``abort`` and ``delete_file`` (fenced) make the
  upload or file vanish at once, its part table left as a tombstone (``gone``); ``reclaim``
  deletes the chunks it names, then it.  ``snapshot`` reads meta and upload in one MULTI.
* An upload opened before chunks spread (no ``layout``) is moved to the spread layout by its next
  chunk (``ChunkStore.migrate``); a file of then is read and deleted where its chunks are.
* Redis must run with ``maxmemory-policy noeviction``: an evicted chunk of a stored file cannot
  be recovered (reads raise ``ChunkMissing``).
"""

from __future__ import annotations

from functools import partial

import redis

from redfile_common.errors import ApiError
from redfile_common.lua_scripts import Scripts
from redfile_files.checksums import Part
from redfile_files.records import MISSING_LIMIT
from redfile_files.storage import keys
from redfile_files.storage.chunks import ChunkStore, keys_of
from redfile_files.storage.records import (
    ChunkWrite,
    Late,
    NewUpload,
    Snapshot,
    UploadState,
    chunk_refused,
    decode_meta,
    decode_parts,
    decode_upload,
    flat,
    text,
)
from redfile_files.storage.staged import StagedChunk, unlink_quietly

READ_PIECE = 1024 * 1024  # bytes per GETRANGE when a chunk is read back


class Changed(Exception):
    """The file's folder or name is no longer the one the caller recorded in flight: read it again and retry."""


class FileStore:
    """Uploads, chunks and file metadata in Redis: the keys of one id, in one slot."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self.scripts = Scripts(client, "redfile_files.storage")
        self.chunks = ChunkStore(client, upload_ttl=upload_ttl)

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
        """A staged ``SET`` of chunk ``index`` (in its slot), its ``size`` bytes streamed in; then ``put_chunk(staged=...)``."""
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

        The bytes go to the chunk's key first (``ChunkStore``), then the file slot's script records
        the part.  ``create`` opens a seed upload with this chunk (fenced by ``not_after_us``);
        ``total_chunks`` is the seed client's claim, checked against the upload's.  ``staged``: the
        bytes are in this staged ``SET`` (``stage``), whose end goes with the chunk's script in one
        round trip, and ``data`` is ignored.
        """
        record = part.encode()
        key = keys.chunk(upload_id, index, record)
        try:
            created = self.chunks.put(key, data) if staged is None else self.chunks.place(staged.key, key, staged)
        except redis.exceptions.ResponseError:  # e.g. OOM: refused; the staged bytes go now, not in 60 s
            if staged is not None:
                unlink_quietly(self.redis, staged.key)
            raise
        record_it = partial(self._record_chunk, upload_id, owner, index, part, now_iso, total_chunks, create, not_after_us)
        try:
            result = record_it()
            if text(result[0]) == "layout":  # an upload opened before chunks spread: moved to its chunks' slots first
                self.chunks.migrate(upload_id)
                result = record_it()
        except redis.exceptions.ResponseError:
            if created:
                self.chunks.drop([key])
            raise
        status = text(result[0])
        if status in ("stored", "unchanged"):
            if result[4]:  # the deadline moved: the recorded chunks follow it
                self.chunks.extend(keys_of(upload_id, _pairs(result[4]), keys.LAYOUT), int(result[3]))
            return ChunkWrite(status == "stored", int(result[1]), int(result[2]), int(result[3]))
        if created and not int(result[2]):
            self.chunks.drop([key])
        raise chunk_refused(status, result, index, part, self.max_file_bytes)

    def _record_chunk(self, upload_id, owner, index, part, now_iso, total_chunks, create, not_after_us) -> list:
        """``put_chunk.lua``: record a chunk written in ``keys.LAYOUT``."""
        call_keys = [keys.upload(upload_id), keys.parts(upload_id), keys.meta(upload_id)]
        args = [owner, index, part.encode(), part.size, self.upload_ttl, now_iso, self.max_file_bytes]
        args += ["" if total_chunks is None else total_chunks, "" if create is None else not_after_us, keys.LAYOUT]
        args += flat(create.fields()) if create is not None else []
        return self.scripts["put_chunk"](keys=call_keys, args=args)

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

    def chunk_lengths(self, file_id: str, parts: dict[int, Part], indices: range, layout: str) -> list[int]:
        """The stored length of each chunk (0: missing, or not recorded in ``parts``), in one round trip."""
        table = {i: parts[i] for i in indices if i in parts}
        found = dict(zip(table, self.chunks.lengths(keys_of(file_id, table, layout))))
        return [found.get(i, 0) for i in indices]

    def missing_chunks(self, upload_id: str, total_chunks: int) -> list[int]:
        """Indices below ``total_chunks`` with no stored part (reads the whole parts hash)."""
        present = {int(i) for i in self.redis.hkeys(keys.parts(upload_id))}
        return [i for i in range(total_chunks) if i not in present]

    def commit(
        self, upload_id: str, *, owner: str, total_chunks: int, size: int, meta: dict, expires_ts: int | None, not_after_us: int
    ) -> None:
        """Turn a complete upload into the file ``meta`` atomically (fenced); see the module contract.

        Every recorded chunk is checked (and held: it lives ``upload_ttl`` more) first, then the file
        slot's script makes the file visible, then its chunks get the file's TTL (``ChunkStore``)."""
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hgetall(keys.parts(upload_id))
            pipe.hget(keys.upload(upload_id), "layout")
            raw, layout = pipe.execute()
        table = {i: p for i, p in decode_parts(raw).items() if i < total_chunks}
        chunk_keys = keys_of(upload_id, table, text(layout) or keys.LEGACY)
        gone = [i for i, there in zip(table, self.chunks.hold(chunk_keys)) if not there]
        call_keys = [keys.upload(upload_id), keys.parts(upload_id), keys.meta(upload_id)]
        args = [owner, not_after_us, total_chunks, size, expires_ts or 0, MISSING_LIMIT, ",".join(map(str, gone)), *flat(meta)]
        result = self.scripts["commit"](keys=call_keys, args=args)
        status = text(result[0])
        if status == "ok":
            self.chunks.settle(chunk_keys, expires_ts)
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
        """Remove the upload at once (fenced), its part table left as its tombstone (``reclaim`` deletes its chunks);
        ``upload_not_found`` when it is not ``owner``'s."""
        call_keys = [keys.upload(upload_id), keys.parts(upload_id), keys.gone(upload_id)]
        result = self.scripts["abort"](keys=call_keys, args=[owner, not_after_us])
        status = text(result[0])
        if status == "late":
            raise Late()
        if status != "ok":
            raise ApiError("upload_not_found")

    # -- files ---------------------------------------------------------------
    def delete_file(
        self, file_id: str, *, not_after_us: int, only_owner: str | None = None, expect: tuple[str, str] | None = None
    ) -> tuple[str, int] | None:
        """Remove the file at once (fenced), its part table left as its tombstone (``reclaim`` deletes its chunks);
        (owner, size), or None when there is no such file.  ``expect``: its (folder, name), else ``Changed``."""
        call_keys = [keys.meta(file_id), keys.parts(file_id), keys.gone(file_id)]
        folder, name = expect or ("", "")
        result = self.scripts["delete_file"](keys=call_keys, args=[not_after_us, only_owner or "", folder, name])
        status = text(result[0])
        if status == "late":
            raise Late()
        if status == "changed":
            raise Changed()
        if status != "ok":
            return None
        return text(result[1]), int(result[2])

    def reclaim(self, file_id: str) -> int:
        """Delete the chunks an id's tombstone names, then the tombstone (idempotent); how many chunk keys."""
        table = {text(k): text(v) for k, v in self.redis.hgetall(keys.gone(file_id)).items()}
        if not table:
            return 0
        layout = table.pop("layout", keys.LEGACY)
        table.pop("owner", None)
        chunk_keys = keys_of(file_id, {int(i): record for i, record in table.items()}, layout)
        self.chunks.unlink(chunk_keys)
        self.redis.unlink(keys.gone(file_id))
        return len(chunk_keys)

    def settle_chunks(self, file_id: str, meta: dict) -> None:
        """A file's chunks get its TTL (none, or its expiry): what a commit does after making it visible."""
        table = self.parts(file_id)
        self.chunks.settle(keys_of(file_id, table, meta.get("layout") or keys.LEGACY), meta.get("expires_ts") or None)

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

    def locate_chunks(self, file_id: str, indices: range) -> dict[int, tuple[str, Part]]:
        """``locate_chunk`` for every index of ``indices`` at once (one round trip, in the id's slot)."""
        if not indices:
            return {}
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.hmget(keys.parts(file_id), list(indices))
            pipe.hmget(keys.meta(file_id), "owner", "layout")
            pipe.hmget(keys.upload(file_id), "owner", "layout")
            raw_parts, (file_owner, file_layout), (_, upload_layout) = pipe.execute()
        layout = text(file_layout if file_owner else upload_layout) or keys.LEGACY
        return {i: (keys.chunk(file_id, i, raw, layout), Part.decode(raw)) for i, raw in zip(indices, raw_parts) if raw}

    def fetch_pieces_at(self, key: str, stored_size: int) -> list[bytes] | None:
        """The ``READ_PIECE`` pieces of the chunk at ``key`` (``stored_size`` from its part record) in one round trip;
        None when the key is not there (``EXISTS`` last: one deleted while read is missing too)."""
        with self.redis.pipeline(transaction=False) as pipe:
            for start in range(0, max(stored_size, 1), READ_PIECE):
                pipe.getrange(key, start, min(start + READ_PIECE, max(stored_size, 1)) - 1)
            pipe.exists(key)
            *pieces, exists = pipe.execute()
        return pieces if exists else None

    def fetch_chunk_pieces(self, file_id: str, index: int) -> tuple[list[bytes] | None, Part | None]:
        """``fetch_chunk``, the bytes as the ``READ_PIECE`` pieces they were read in (a download sends them on unjoined).

        The part record and the layout come first (the id's slot), then the chunk from the key they
        name: the first piece and the length in one round trip, a longer chunk's other pieces in a
        second.  A chunk's key names its content, so its bytes never change under the reader (a tus
        append writes its tail again under another key); one deleted meanwhile reads as missing.
        A reply of a whole 8 MiB chunk is read about half as fast per byte as 1 MiB pieces.
        """
        key, part = locate_chunk(self.redis, file_id, index)
        if key is None:
            return None, part
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.getrange(key, 0, READ_PIECE - 1)
            pipe.strlen(key)
            pipe.exists(key)  # STRLEN is 0 for a missing key and an empty chunk alike
            first, size, exists = pipe.execute()
        if not exists:
            return None, part
        if size <= READ_PIECE:
            return [first], part
        with self.redis.pipeline(transaction=False) as pipe:
            for start in range(READ_PIECE, size, READ_PIECE):
                pipe.getrange(key, start, min(start + READ_PIECE, size) - 1)
            rest = pipe.execute()
        if len(first) + sum(map(len, rest)) != size:  # deleted while it was read
            return None, part
        return [first, *rest], part

    def rename(self, file_id: str, fields: dict[str, str], *, not_after_us: int, expect: tuple[str, str]) -> bool:
        """Set these meta fields (name, folder, updated_at) if the file exists and its (folder, name) is still
        ``expect`` (else ``Changed``), fenced (``Late`` after ``not_after_us``); False when it does not exist."""
        args = [not_after_us, *expect, *flat(fields)]
        result = text(self.scripts["rename"](keys=[keys.meta(file_id)], args=args))
        if result == "late":
            raise Late()
        if result == "changed":
            raise Changed()
        return result == "ok"


def locate_chunk(client: redis.Redis, file_id: str, index: int) -> tuple[str | None, Part | None]:
    """Where chunk ``index`` of an id is stored (the key its part record and the id's layout name), and that record;
    (None, None) when no record names one.  One round trip, in the id's slot."""
    with client.pipeline(transaction=False) as pipe:
        pipe.hget(keys.parts(file_id), index)
        pipe.hmget(keys.meta(file_id), "owner", "layout")
        pipe.hmget(keys.upload(file_id), "owner", "layout")
        raw_part, (file_owner, file_layout), (_, upload_layout) = pipe.execute()
    if not raw_part:
        return None, None
    layout = text(file_layout if file_owner else upload_layout) or keys.LEGACY
    return keys.chunk(file_id, index, raw_part, layout), Part.decode(raw_part)


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


def _pairs(flat_reply: list) -> dict[int, str]:
    """A script's ``HGETALL`` reply (index, record, ...) as a part table of records."""
    return {int(flat_reply[i]): text(flat_reply[i + 1]) for i in range(0, len(flat_reply), 2)}


__all__ = ["READ_PIECE", "FileStore", "Late", "locate_chunk", "prefetch_meta", "prefetch_upload", "read_meta", "read_parts", "read_upload"]
