"""A tus upload's byte-offset appends onto the chunk store, in the upload's slot.

A tus upload is an ordinary upload (mode ``tus``) whose chunks have the upload's chunk size C:
chunk ``i`` holds bytes ``[i*C, min((i+1)*C, offset))``, so every chunk but the last (the tail,
``offset mod C`` bytes) is full, and ``received_bytes`` is the offset.  A finished upload is thus
what a session leaves, completed by the same ``commit``.  An append that starts inside the tail
rewrites the tail whole (the caller reads it, adds the new bytes and seals the result).

Contract of ``TusStore``:

* ``append`` is the one write of a tus upload's bytes: first each chunk goes to its own key (in
  its own slot, only if absent: ``storage.chunks``; staged bytes gone: ``service_unavailable``),
  then one script checks owner, mode (a final upload only with ``allow_final``), that the offset
  is ``expected`` (else ``OffsetMismatch`` with the current one, nothing recorded) and the length
  rules; then records each chunk's part, sets the offset and pushes the deadline.  Of two appends
  at one offset the first to run wins; the loser's chunk keys that no record names are deleted.
  Offsets only grow, so an unchanged offset proves the tail the caller read is still the tail; a
  rewritten tail is a new key (its content changed), the earlier one deleted once it is recorded.
* ``open_staged`` begins a chunk's ``SET`` under a request's own staging key in the chunk's slot
  (``StagedChunk``); ``append(staged=...)`` ends it with the chunk's script right behind it on the
  same connection, and ``finish()`` ends it alone (a checksum's chunks, appended together after
  the check).  Staging keys expire (``STAGING_TTL``, or ``upload_ttl`` for a checksum's, which
  wait for the whole body); ``discard`` removes them.
* ``append_later(staged=...)`` sends the staged chunk's end and script without waiting: a thread
  reads the replies and records the append while the caller's next chunk streams on another
  connection; ``result()`` returns or raises what ``append`` would.
* ``link_final`` records on a partial upload that a final waits for it (only while the partial
  exists); ``annotate_file`` adds tus fields to a file's meta (only while the file exists).
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import redis

from redfile_common import deadline
from redfile_common.errors import ApiError
from redfile_common.lua_scripts import Scripts
from redfile_files.storage import keys
from redfile_files.storage.chunks import ChunkStore, keys_of
from redfile_files.storage.records import Appended, OffsetMismatch, Segment, text
from redfile_files.storage.staged import STAGING_TTL, StagedChunk, unlink_quietly


class PendingAppend:
    """An append whose staged ``SET`` and chunk script were sent (``append_later``): a thread of its own reads their
    replies and records the append at once, as the request goes on; ``result()`` waits for it."""

    def __init__(self, read: Callable[[], Appended]) -> None:
        self._outcome: tuple[Appended | None, BaseException | None] = (None, None)
        self._thread = threading.Thread(target=self._run, args=(deadline.carried(read),), name="redfile-tus-append", daemon=True)
        self._thread.start()

    def _run(self, read: Callable[[], Appended]) -> None:
        try:
            self._outcome = (read(), None)
        except BaseException as error:  # handed to result()
            self._outcome = (None, error)

    def result(self) -> Appended:
        """``append``'s result, or what it raises (the chunk keys it created and no record names removed)."""
        self._thread.join()
        done, error = self._outcome
        if error is not None:
            raise error
        assert done is not None
        return done


class TusStore:
    """The file-slot scripts of tus uploads (see the module contract)."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self.scripts = Scripts(client, "redfile_files.storage")
        self.chunks = ChunkStore(client, upload_ttl=upload_ttl)

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
        key) that this ends, the chunk's script sent right behind it."""
        written = self._write(upload_id, segments, staged)
        return self._record(upload_id, written, owner, expected, new_offset, now_iso, length, allow_final)

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
        """``append(staged=...)`` sent (the staged chunk's end and its script), its replies not read: ``result()`` reads
        them and records the append (see the module contract)."""
        seg = next(s for s in segments if s.staged_key == staged.key)
        key = keys.chunk(upload_id, seg.index, seg.part.encode())
        script, call_keys, args = self.chunks.place_call(staged.key, key)
        self._staged_step(staged, lambda: staged.send_end(script, call_keys, args))

        def read() -> Appended:
            created = self.chunks.placed(self._staged_step(staged, staged.read_end))
            written = [(seg, key, created), *self._write(upload_id, [s for s in segments if s is not seg], None)]
            return self._record(upload_id, written, owner, expected, new_offset, now_iso, length, False)

        return PendingAppend(read)

    def _write(self, upload_id: str, segments: list[Segment], staged: StagedChunk | None) -> list[tuple[Segment, str, bool]]:
        """Each segment's bytes to its chunk key (only if absent), in the chunks' slots: (segment, key, created)."""
        where = {id(seg): keys.chunk(upload_id, seg.index, seg.part.encode()) for seg in segments}
        created: dict[int, bool] = {}
        for seg in segments:
            if staged is not None and seg.staged_key == staged.key:
                created[id(seg)] = self._staged_step(staged, lambda seg=seg: self.chunks.place(staged.key, where[id(seg)], staged))
        moves = [seg for seg in segments if seg.staged_key is not None and id(seg) not in created]
        created |= dict(zip(map(id, moves), self.chunks.place_many([(s.staged_key, where[id(s)]) for s in moves])))  # type: ignore[misc]  # staged_key is set
        puts = [seg for seg in segments if seg.staged_key is None]
        created |= dict(zip(map(id, puts), self.chunks.put_many([(where[id(s)], s.data) for s in puts])))
        return [(seg, where[id(seg)], created[id(seg)]) for seg in segments]

    def _record(self, upload_id, written, owner, expected, new_offset, now_iso, length, allow_final) -> Appended:
        """``tus_append.lua`` over chunks ``written``: the append's result, or what it raises (the keys it created and
        no record names deleted, and a tail's earlier version once the new one is recorded)."""
        result = self._call(upload_id, written, owner, expected, new_offset, now_iso, length, allow_final)
        if text(result[0]) == "layout":  # an upload opened before chunks spread: moved to its chunks' slots first
            self.chunks.migrate(upload_id)
            result = self._call(upload_id, written, owner, expected, new_offset, now_iso, length, allow_final)
        status = text(result[0])
        if status == "ok":
            if result[3]:  # the deadline moved: the recorded chunks follow it
                self.chunks.extend(keys_of(upload_id, _table(result[3]), keys.LAYOUT), int(result[1]))
            if result[4]:  # a tail written again: its earlier version is read by nobody now
                self.chunks.drop(keys_of(upload_id, _table(result[4]), keys.LAYOUT))
            return Appended(int(result[1]), bool(int(result[2])))
        self.chunks.drop(key for (_, key, created), recorded in zip(written, result[2]) if created and not int(recorded))
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
        raise ApiError("upload_not_found")

    def _call(self, upload_id, written, owner, expected, new_offset, now_iso, length, allow_final) -> list:
        args: list = [owner, expected, new_offset, "" if length is None else length, self.upload_ttl, now_iso]
        args += [keys.LAYOUT, self.max_file_bytes, "1" if allow_final else "0", len(written)]
        for seg, _, _ in written:
            args += [seg.index, seg.part.encode()]
        return self.scripts["tus_append"](keys=[keys.upload(upload_id), keys.parts(upload_id)], args=args)

    def open_staged(self, upload_id: str, index: int, token: str, n: int, size: int, *, waits: bool = False) -> StagedChunk:
        """A ``SET`` of ``size`` bytes (chunk ``index``) to the request's ``n``-th staging key, begun: ``write`` its
        bytes, then ``append(staged=...)`` (or ``abandon`` it: nothing is stored).  The key lives ``STAGING_TTL``, or
        ``upload_ttl`` when it ``waits`` (a checksum's staged chunks wait for the whole body)."""
        key = keys.tus_staging(upload_id, index, token, n)
        return StagedChunk(self.redis, key, size, ttl=self.upload_ttl if waits else STAGING_TTL).__enter__()

    def _staged_step(self, staged: StagedChunk, step):
        """``step()`` (a part of ending ``staged``); on a Redis error the staging key goes (the SET may have run)."""
        try:
            return step()
        except redis.exceptions.RedisError:  # e.g. OOM, or the connection lost: the SET may have run, not the script
            unlink_quietly(self.redis, staged.key)
            raise

    def discard(self, staging_keys: list[str]) -> None:
        self.chunks.unlink(staging_keys)

    def link_final(self, partial_id: str, final_id: str) -> bool:
        return bool(self.scripts["tus_link_final"](keys=[keys.upload(partial_id)], args=[f"tus_final:{final_id}"]))

    def annotate_file(self, file_id: str, fields: dict[str, str]) -> bool:
        pairs = [x for kv in fields.items() for x in kv]
        return bool(pairs) and bool(self.scripts["annotate_file"](keys=[keys.meta(file_id)], args=pairs))


def _table(flat_reply: list) -> dict[int, str]:
    """A script's (index, record, ...) reply as a part table of records."""
    return {int(flat_reply[i]): text(flat_reply[i + 1]) for i in range(0, len(flat_reply), 2)}
