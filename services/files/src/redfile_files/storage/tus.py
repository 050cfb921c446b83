"""The tus uploads' Redis side: byte-offset appends onto the chunk store, in the upload's slot.

A tus upload is an ordinary upload (``files:{<id>}:upload``, ``:parts``,
``:c:<index>``; see ``storage``) with ``mode = tus``.  Its bytes live in
chunks of the upload's ``chunk_size`` C (``DEFAULT_CHUNK_BYTES`` when it was
created): chunk ``i`` holds bytes ``[i*C, min((i+1)*C, offset))``, so every
chunk but the last is full and the last one, the **tail**, holds
``offset mod C`` bytes (or is full).  ``received_bytes`` is the tus offset.
A finished upload is thus exactly what a session leaves: uniform chunks and
a part table, completed by the same ``commit``.

An append that starts inside the tail rewrites the tail chunk whole: the
caller reads and opens it, adds the new bytes, seals the result under the
same index and hands it here.  That is what keeps chunks uniform; it costs
rewriting up to one chunk per ``PATCH`` that does not start on a chunk
boundary (clients that send chunks of a multiple of C, or the whole rest of
the file at once, never pay it).

Key spaces added by tus (all in the upload's slot, ``{<id>}``):

=====================================  ======  ===========================================
key                                    type    holds / TTL
=====================================  ======  ===========================================
``files:{<id>}:upload`` (more fields)  hash    ``tus_metadata`` (Upload-Metadata as sent),
                                               ``tus_concat`` (``partial`` or the final's
                                               ``final;<urls>``), ``tus_parts`` (a final's
                                               partial ids, space-separated),
                                               ``tus_final:<id>`` (on a partial: a final
                                               waiting for it).  The upload's deadline.
``files:{<id>}:s:<token>:<n>``         string  one chunk of a ``PATCH`` on its way in
                                               (sealed like a chunk): until its checksum is
                                               verified, or until the script sent right
                                               behind its ``SET`` runs (``open_staged``).
                                               EX ``UPLOAD_TTL`` (a checksum's) or
                                               ``STAGING_TTL``; renamed into place, or
                                               deleted, when the request ends.
``files:{<id>}:meta`` (more fields)    hash    ``tus_metadata``, ``tus_concat``, copied
                                               from the upload once it is a file.
=====================================  ======  ===========================================

Contract of ``TusStore``:

* ``append`` is the one write of an upload's bytes: in one script it checks
  the owner, that the upload is a tus upload (and not a final one, unless
  ``allow_final``), that its offset is ``expected`` (else ``OffsetMismatch``
  with the current offset, and nothing changes), the length rules (a length
  is set once; no byte past it, nor past the largest file), and that every
  staged key is still there; then it writes or renames each chunk into
  place, records its part, sets the offset to ``new_offset`` and pushes the
  deadline as ``put_chunk`` does.  Two appends racing on one upload: the
  first to run moves the offset, the other gets ``OffsetMismatch``.
  Offsets only grow, so an offset that still equals ``expected`` proves the
  tail the caller read is still the tail.
* ``open_staged(key, size)`` begins a chunk's write under a request's own
  staging key, as a ``SET`` whose value is sent piece by piece
  (``storage.StagedChunk``: the bytes as they arrive, or a sealed chunk at
  once); the key is invisible until ``append`` renames it.  ``finish()``
  ends the ``SET`` alone (a checksum's chunks, appended together after the
  check); ``append(staged=...)`` ends it with the script right behind it on
  the same connection: one round trip.  Large chunks take this way: as a
  script argument, a chunk's bytes would be copied into Lua and again into
  the key (an 8 MiB chunk took about twice as long to store,
  docs/performance.md).  When that script refuses (or fails, or its
  connection is lost), the staged key is removed; staged keys also expire
  (``STAGING_TTL``, or ``UPLOAD_TTL`` for a checksum's, which wait for the
  whole body); a write never ended (``abandon``) stores nothing.  ``discard``
  removes staged keys.
* ``append_later(staged=...)`` sends what ``append(staged=...)`` sends and
  does not wait: its ``PendingAppend.result()`` reads the replies later and
  returns or raises what ``append`` would (the staged key removed on a
  refusal).  Meanwhile the connection is the pending append's, so the
  caller's next chunk streams on another one; the caller reads each result
  before it sends the next append (whose ``expected`` offset depends on it).
* ``link_final`` records on a partial upload that a final waits for it
  (only while the partial exists); ``annotate_file`` copies tus fields into a
  file's meta (only while the file exists).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import redis

from redfile_common.errors import ApiError
from redfile_files.checksums import Part
from redfile_files.storage.files import _TIME, STAGING_TTL, StagedChunk, chunk_prefix, meta_key, parts_key, unlink_quietly, upload_key

TUS_MODE = "tus"

_APPEND = (
    _TIME
    + """
local upload, parts = KEYS[1], KEYS[2]
local owner, expected, new_offset = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3])
local ttl, now_iso, prefix, max_file = tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8])
local allow_final, n = ARGV[9] == '1', tonumber(ARGV[10])
local u = redis.call('HMGET', upload, 'owner', 'mode', 'received_bytes', 'total_size', 'chunk_size', 'deadline', 'tus_concat')
if not u[1] or u[1] ~= owner or u[2] ~= 'tus' then return {'not_found'} end
if not allow_final and u[7] and string.sub(u[7], 1, 5) == 'final' then return {'final'} end
local offset = tonumber(u[3])
if offset ~= expected then return {'mismatch', offset} end
local length = nil
if u[4] and u[4] ~= '' then length = tonumber(u[4]) end
local set_length = false
if ARGV[4] ~= '' then
  local wanted = tonumber(ARGV[4])
  if length and length ~= wanted then return {'length_conflict', length} end
  if wanted < new_offset then return {'too_long', wanted} end
  if wanted > max_file then return {'too_large'} end
  set_length = not length
  length = wanted
end
if length and new_offset > length then return {'too_long', length} end
if new_offset > max_file then return {'too_large'} end
for i = 0, n - 1 do
  local base = 11 + i * 4
  if ARGV[base + 2] == 's' and redis.call('EXISTS', ARGV[base + 3]) == 0 then return {'staged_gone'} end
end
local deadline = tonumber(u[6])
if deadline - now < ttl * 0.9 then
  deadline = now + ttl
  redis.call('HSET', upload, 'deadline', deadline)
  for _, i in ipairs(redis.call('HKEYS', parts)) do
    redis.call('EXPIREAT', prefix .. i, deadline)
  end
end
for i = 0, n - 1 do
  local base = 11 + i * 4
  local key = prefix .. ARGV[base]
  if ARGV[base + 2] == 's' then
    redis.call('RENAME', ARGV[base + 3], key)
    redis.call('EXPIREAT', key, deadline)
  else
    redis.call('SET', key, ARGV[base + 3], 'EXAT', deadline)
  end
  redis.call('HSET', parts, ARGV[base], ARGV[base + 1])
end
if set_length then
  local c = tonumber(u[5])
  redis.call('HSET', upload, 'total_size', ARGV[4], 'total_chunks', string.format('%.0f', math.ceil(length / c)))
end
redis.call('HSET', upload, 'received_bytes', ARGV[3], 'updated_at', now_iso)
redis.call('EXPIREAT', upload, deadline)
if redis.call('EXISTS', parts) == 1 then redis.call('EXPIREAT', parts, deadline) end
return {'ok', deadline, set_length and 1 or 0}
"""
)

_LINK_FINAL = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], ARGV[1], '1')
return 1
"""

_ANNOTATE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV))
return 1
"""


class OffsetMismatch(Exception):
    """The upload's offset is not the one the append expected: nothing changed."""

    def __init__(self, offset: int) -> None:
        self.offset = offset
        super().__init__(f"the upload's offset is {offset}")


@dataclass(frozen=True)
class Segment:
    """One chunk to put in place: its index, its plaintext's part record, and its stored bytes or staged key."""

    index: int
    part: Part
    data: bytes | memoryview | None = None
    staged_key: str | None = None


@dataclass(frozen=True)
class Appended:
    deadline: int
    length_set: bool  # this append set the upload's length


def staging_key(upload_id: str, token: str, n: int) -> str:
    return f"{chunk_prefix(upload_id)[: -len('c:')]}s:{token}:{n}"


def new_staging_token() -> str:
    return secrets.token_hex(8)


class TusStore:
    """The file-slot scripts tus adds to ``FileStore`` (see the module contract)."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self._append = client.register_script(_APPEND)
        self._link_final = client.register_script(_LINK_FINAL)
        self._annotate = client.register_script(_ANNOTATE)

    def append(
        self,
        upload_id: str,
        *,
        owner: str,
        expected: int,
        new_offset: int,
        segments: list[Segment],
        now_iso: str,
        length: int | None = None,
        allow_final: bool = False,
        staged: StagedChunk | None = None,
    ) -> Appended:
        """See the module contract; ``staged``: an ``open_staged`` write (of the segment whose ``staged_key`` is its
        key) that this ends, the script sent right behind it."""
        keys, args = self._append_call(upload_id, owner, expected, new_offset, segments, now_iso, length, allow_final)
        if staged is None:
            return self._appended(self._append(keys=keys, args=args), None)
        return self._appended(self._staged_reply(staged, lambda: staged.finish(self._append, keys, args)), staged)

    def append_later(
        self,
        upload_id: str,
        *,
        owner: str,
        expected: int,
        new_offset: int,
        segments: list[Segment],
        now_iso: str,
        staged: StagedChunk,
        length: int | None = None,
    ) -> PendingAppend:
        """``append(staged=...)`` sent, its replies not yet read: ``result()`` reads them and is what ``append``
        returns or raises.  Meanwhile the request goes on with its next chunk, on another connection."""
        keys, args = self._append_call(upload_id, owner, expected, new_offset, segments, now_iso, length, False)
        self._staged_reply(staged, lambda: staged.send_end(self._append, keys, args))
        return PendingAppend(self, staged)

    def _append_call(self, upload_id, owner, expected, new_offset, segments, now_iso, length, allow_final) -> tuple[list, list]:
        args: list = [
            owner,
            expected,
            new_offset,
            "" if length is None else length,
            self.upload_ttl,
            now_iso,
            chunk_prefix(upload_id),
            self.max_file_bytes,
            "1" if allow_final else "0",
            len(segments),
        ]
        for seg in segments:
            if seg.staged_key is not None:
                args += [seg.index, seg.part.encode(), "s", seg.staged_key]
            else:
                args += [seg.index, seg.part.encode(), "d", seg.data]
        return [upload_key(upload_id), parts_key(upload_id)], args

    def _appended(self, result, staged: StagedChunk | None) -> Appended:
        """The append script's reply, as ``append`` returns or raises it."""
        status = _text(result[0])
        if status == "ok":
            return Appended(int(result[1]), bool(int(result[2])))
        if staged is not None:
            unlink_quietly(self.redis, staged.key)  # refused: the staged bytes go now, not when they expire
        if status == "mismatch":
            raise OffsetMismatch(int(result[1]))
        if status == "final":
            raise ApiError("forbidden", "A final upload is made by concatenation; it takes no PATCH.")
        if status == "length_conflict":
            raise ApiError("bad_request", "Upload-Length was already set and cannot change.", details={"upload_length": int(result[1])})
        if status == "too_long":
            raise ApiError("payload_too_large", "The bytes would go past the upload's length.", details={"upload_length": int(result[1])})
        if status == "too_large":
            raise ApiError(
                "payload_too_large", "The upload would exceed the largest file size.", details={"max_file_bytes": self.max_file_bytes}
            )
        if status == "staged_gone":
            raise ApiError("service_unavailable", "The request's staged data expired; send it again.", headers={"Retry-After": "1"})
        raise ApiError("upload_not_found")

    def open_staged(self, key: str, size: int, *, waits: bool = False) -> StagedChunk:
        """A ``SET`` of ``size`` bytes to staging ``key``, begun: ``write`` its bytes, then ``append(staged=...)``
        (or ``abandon`` it: nothing is stored).  The key lives ``STAGING_TTL``, or ``upload_ttl`` when it ``waits``
        (a checksum's staged chunks wait for the whole body)."""
        return StagedChunk(self.redis, key, size, ttl=self.upload_ttl if waits else STAGING_TTL).__enter__()

    def _staged_reply(self, staged: StagedChunk, step):
        """``step()`` (a part of ending ``staged``); on a Redis error the staging key goes (the SET may have run)."""
        try:
            return step()
        except redis.exceptions.RedisError:  # e.g. OOM, or the connection lost: the SET may have run, not the script
            unlink_quietly(self.redis, staged.key)
            raise

    def discard(self, keys: list[str]) -> None:
        if keys:
            self.redis.unlink(*keys)

    def link_final(self, partial_id: str, final_id: str) -> bool:
        return bool(self._link_final(keys=[upload_key(partial_id)], args=[f"tus_final:{final_id}"]))

    def annotate_file(self, file_id: str, fields: dict[str, str]) -> bool:
        flat = [x for kv in fields.items() for x in kv]
        return bool(flat) and bool(self._annotate(keys=[meta_key(file_id)], args=flat))


class PendingAppend:
    """An append whose staged ``SET`` and script were sent and whose replies are not read yet (``append_later``)."""

    def __init__(self, store: TusStore, staged: StagedChunk) -> None:
        self.store, self.staged = store, staged

    def result(self) -> Appended:
        """Read the replies: ``append``'s result, or what it raises (the staging key removed when refused)."""
        return self.store._appended(self.store._staged_reply(self.staged, self.staged.read_end), self.staged)


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
