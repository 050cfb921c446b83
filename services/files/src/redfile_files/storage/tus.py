"""A tus upload's byte-offset appends onto the chunk store, in the upload's slot.

A tus upload is an ordinary upload (mode ``tus``) whose chunks have the upload's chunk size C:
chunk ``i`` holds bytes ``[i*C, min((i+1)*C, offset))``, so every chunk but the last (the tail,
``offset mod C`` bytes) is full, and ``received_bytes`` is the offset.  A finished upload is thus
what a session leaves, completed by the same ``commit``.  An append that starts inside the tail
rewrites the tail whole (the caller reads it, adds the new bytes and seals the result).

Contract of ``TusStore``:

* ``append`` is the one write of a tus upload's bytes: one script checks owner, mode (a final
  upload only with ``allow_final``), that the offset is ``expected`` (else ``OffsetMismatch``
  with the current one, nothing changed), the length rules and that every staged key is still
  there; then puts each chunk in place, records its part, sets the offset and pushes the
  deadline.  Of two appends at one offset the first to run wins.  Offsets only grow, so an
  unchanged offset proves the tail the caller read is still the tail.
* ``open_staged`` begins a chunk's ``SET`` under a request's own staging key (``StagedChunk``);
  ``append(staged=...)`` ends it with the script right behind it on the same connection, and
  ``finish()`` ends it alone (a checksum's chunks, appended together after the check).  A
  refused or failed append removes its staging key; staging keys also expire (``STAGING_TTL``,
  or ``upload_ttl`` for a checksum's, which wait for the whole body); ``discard`` removes them.
* ``append_later(staged=...)`` sends what ``append`` sends without waiting: ``result()`` reads the
  replies later and returns or raises what ``append`` would.  Meanwhile the connection is the
  pending append's, so the caller's next chunk streams on another one.
* ``link_final`` records on a partial upload that a final waits for it (only while the partial
  exists); ``annotate_file`` adds tus fields to a file's meta (only while the file exists).
"""

from __future__ import annotations

from collections.abc import Callable

import redis

from redfile_common.errors import ApiError
from redfile_common.lua_scripts import Scripts
from redfile_files.storage import keys
from redfile_files.storage.records import Appended, OffsetMismatch, Segment, text
from redfile_files.storage.staged import STAGING_TTL, StagedChunk, unlink_quietly


class PendingAppend:
    """An append whose staged ``SET`` and script were sent and whose replies are not read yet (``append_later``)."""

    def __init__(self, read: Callable[[], Appended]) -> None:
        self._read = read

    def result(self) -> Appended:
        """Read the replies: ``append``'s result, or what it raises (the staging key removed when refused)."""
        return self._read()


class TusStore:
    """The file-slot scripts of tus uploads (see the module contract)."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self.scripts = Scripts(client, "redfile_files.storage")

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
        call_keys, args = self._call(upload_id, owner, expected, new_offset, segments, now_iso, length, allow_final)
        script = self.scripts["tus_append"]
        if staged is None:
            return self._appended(script(keys=call_keys, args=args), None)
        return self._appended(self._staged_step(staged, lambda: staged.finish(script, call_keys, args)), staged)

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
        """``append(staged=...)`` sent, its replies not read: ``result()`` reads them (see the module contract)."""
        call_keys, args = self._call(upload_id, owner, expected, new_offset, segments, now_iso, length, False)
        script = self.scripts["tus_append"]
        self._staged_step(staged, lambda: staged.send_end(script, call_keys, args))
        return PendingAppend(lambda: self._appended(self._staged_step(staged, staged.read_end), staged))

    def _call(self, upload_id, owner, expected, new_offset, segments, now_iso, length, allow_final) -> tuple[list, list]:
        args: list = [owner, expected, new_offset, "" if length is None else length, self.upload_ttl, now_iso]
        args += [keys.chunk_prefix(upload_id), self.max_file_bytes, "1" if allow_final else "0", len(segments)]
        for seg in segments:
            if seg.staged_key is not None:
                args += [seg.index, seg.part.encode(), "s", seg.staged_key]
            else:
                args += [seg.index, seg.part.encode(), "d", seg.data]
        return [keys.upload(upload_id), keys.parts(upload_id)], args

    def _appended(self, result, staged: StagedChunk | None) -> Appended:
        """The append script's reply, as ``append`` returns or raises it."""
        status = text(result[0])
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

    def open_staged(self, upload_id: str, token: str, n: int, size: int, *, waits: bool = False) -> StagedChunk:
        """A ``SET`` of ``size`` bytes to the request's ``n``-th staging key, begun: ``write`` its bytes, then
        ``append(staged=...)`` (or ``abandon`` it: nothing is stored).  The key lives ``STAGING_TTL``, or
        ``upload_ttl`` when it ``waits`` (a checksum's staged chunks wait for the whole body)."""
        key = keys.tus_staging(upload_id, token, n)
        return StagedChunk(self.redis, key, size, ttl=self.upload_ttl if waits else STAGING_TTL).__enter__()

    def _staged_step(self, staged: StagedChunk, step):
        """``step()`` (a part of ending ``staged``); on a Redis error the staging key goes (the SET may have run)."""
        try:
            return step()
        except redis.exceptions.RedisError:  # e.g. OOM, or the connection lost: the SET may have run, not the script
            unlink_quietly(self.redis, staged.key)
            raise

    def discard(self, staging_keys: list[str]) -> None:
        if staging_keys:
            self.redis.unlink(*staging_keys)

    def link_final(self, partial_id: str, final_id: str) -> bool:
        return bool(self.scripts["tus_link_final"](keys=[keys.upload(partial_id)], args=[f"tus_final:{final_id}"]))

    def annotate_file(self, file_id: str, fields: dict[str, str]) -> bool:
        pairs = [x for kv in fields.items() for x in kv]
        return bool(pairs) and bool(self.scripts["annotate_file"](keys=[keys.meta(file_id)], args=pairs))
