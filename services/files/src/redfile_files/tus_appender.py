"""Cutting a stream of bytes at an upload's chunk boundaries, each chunk put in place by one checked append.

Used by ``tus_engine`` for ``PATCH`` bodies and for the copy of a
concatenation.  The first piece of bytes reads the tail chunk (the one the
offset is inside of) so the new bytes extend it; each full chunk (and the last,
partial one) is sealed and either appended at once, or staged when a checksum
must be verified first and then appended all together.  A deferred length
reserves each chunk's new bytes just before its append, and gives them back
if the append refuses.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import structlog

from redfile_common.errors import ApiError

from .checksums import crc32c_hex, part_of
from .crypto import ChunkCorrupt
from .records import iso
from .tus_store import OffsetMismatch, Segment, new_staging_token, staging_key

if TYPE_CHECKING:
    from .tus_engine import TusUpload, TusUploads

log = structlog.get_logger("redfile.files.tus")


class Appender:
    """Cuts a stream of bytes at the upload's chunk boundaries and puts each chunk in place (see ``tus_engine``)."""

    def __init__(
        self, engine: TusUploads, owner: str, up: TusUpload, *, length: int | None, staged: bool, reserve: bool, limit: int,
        allow_final: bool = False,
    ) -> None:  # fmt: skip
        self.engine = engine
        self.owner = owner
        self.up = up
        self.length = length  # set with the first append
        self.staged = staged
        self.reserve = reserve  # a deferred length: reserve each chunk's new bytes before it goes in
        self.limit = limit
        self.allow_final = allow_final
        self.size = up.chunk_size
        self.offset = up.offset  # the upload's offset as of the last append
        self.deadline: int | None = None
        self.index = up.offset // self.size
        self.buf = bytearray()
        self.fresh = 0  # bytes in buf that are new (after the tail)
        self.received = 0
        self.sealer = engine.files.encryption.sealer(up.id, up.dek)
        self.pending: list[Segment] = []
        self.pending_new = 0
        self.token = new_staging_token() if staged else ""
        self._tail_loaded = False

    def _load_tail(self) -> None:
        """The bytes of the chunk the offset is inside of (they are rewritten with the new ones)."""
        self._tail_loaded = True
        fill = self.offset % self.size
        if fill == 0:
            return
        (stored, part), = self.engine.store.fetch_chunks(self.up.id, [self.index])
        if stored is None or part is None:
            log.error("tus_tail_missing", upload_id=self.up.id, chunk_index=self.index)
            raise ApiError("stored_data_corrupt", details={"chunk_index": self.index})
        try:
            plain = self.sealer.open(self.index, stored)
        except ChunkCorrupt:
            raise ApiError("stored_data_corrupt", details={"chunk_index": self.index}) from None
        if len(plain) != fill or crc32c_hex(plain) != part.crc32c:
            raise OffsetMismatch(self.engine.get(self.owner, self.up.id).offset)  # it moved on since we looked
        self.buf = bytearray(plain)

    def feed(self, piece) -> None:
        if not len(piece):
            return
        if not self._tail_loaded:
            self._load_tail()
        view = memoryview(piece)
        self.received += len(view)
        if self.received > self.limit:
            raise ApiError("payload_too_large", "The body would go past the upload's length.", details={"remaining": self.limit})
        while len(view):
            take = min(self.size - len(self.buf), len(view))
            self.buf += view[:take]
            self.fresh += take
            view = view[take:]
            if len(self.buf) == self.size:
                self._chunk_done()

    def _chunk_done(self) -> None:
        part = part_of(self.buf)
        stored = self.sealer.seal(self.index, memoryview(self.buf))  # no copy; self.buf is replaced below
        if self.staged:
            key = staging_key(self.up.id, self.token, len(self.pending))
            self.engine.tus.stage(key, stored)
            self.pending.append(Segment(self.index, part, staged_key=key))
            self.pending_new += self.fresh
        else:
            self._append([Segment(self.index, part, data=stored)], self.fresh)
        self.index += 1
        self.buf = bytearray()
        self.fresh = 0

    def finish(self) -> None:
        """Put the last (partial) chunk in place, or every staged one at once; set a length with no bytes."""
        if self.fresh:
            self._chunk_done()
        if self.staged:
            if self.pending or self.length is not None:
                self._append(self.pending, self.pending_new)
            self.pending, self.pending_new = [], 0  # in place now: nothing left to discard
        elif self.length is not None:
            self._append([], 0)

    def _append(self, segments: list[Segment], new: int) -> None:
        engine = self.engine
        if self.reserve and new:
            engine._reserve(self.owner, self.up.id, new, new=False)
        try:
            done = engine.tus.append(
                self.up.id, owner=self.owner, expected=self.offset, new_offset=self.offset + new, segments=segments,
                now_iso=iso(engine.files.clock()), length=self.length, allow_final=self.allow_final,
            )  # fmt: skip
        except BaseException:
            if self.reserve and new:
                engine.ledger.shrink(self.owner, self.up.id, new)
            raise
        self.offset += new
        self.length = None
        self.deadline = done.deadline
        if self.allow_final:
            return  # a concatenation copies bytes that were counted when they reached the partials
        metrics = engine.files.metrics
        for _ in segments:
            metrics.chunk_stored()
        metrics.bytes_uploaded(new)

    def abandon(self) -> None:
        """Delete staged chunks that were not put in place."""
        keys = [s.staged_key for s in self.pending if s.staged_key]
        self.pending, self.pending_new = [], 0
        if keys:
            self.engine.tus.discard(keys)
