"""Cutting a stream of bytes at an upload's chunk boundaries, each chunk put in place by one checked append.

Used for ``PATCH`` bodies and for the copy of a concatenation.  The first bytes read the tail chunk
(the one the offset is inside of) so the new bytes extend it; each full chunk (and the last,
partial one) is sealed and appended at once, or, when a checksum must be verified first, staged
and then appended all together.  A deferred length reserves each chunk's new bytes just before
its append, and gives them back if the append refuses.

How a chunk's bytes reach Redis: a chunk of ``SEND_AHEAD_MIN`` bytes or more goes as a staging
``SET`` that the chunk's script renames into place, sent on the same connection right ahead of the
script; a smaller one is set to its key directly; then the append script records it.  When the
body's length is known, the upload's length too (nothing to reserve per chunk) and the upload is
not encrypted, that ``SET`` opens as soon as the chunk's size is known and each piece goes on as
it arrives, so receiving and storing overlap; otherwise the chunk is sent once complete.  The pieces are also held (the received
objects, not copies): a body that ends early still has what arrived stored (tus keeps it), the
unfinished ``SET`` abandoned and the bytes sent again.

Such a chunk's append (outside a checksum's staging, a deferred length and a concatenation) is
sent without waiting for its replies: the next chunk streams on another connection while a thread
reads them and records the append, and its result is read before the next append (whose expected
offset depends on it), at the body's end, or in ``abandon``.  A refusal is raised one chunk later;
if the request fails for another reason first, that error is the answer, and the offset (``HEAD``)
still says what is in.
"""

from __future__ import annotations

from collections.abc import Callable

import structlog

from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.checksums import ChunkDigest, crc32c_hex, part_of
from redfile_files.crypto import ChunkCorrupt, NullSealer
from redfile_files.records import iso
from redfile_files.storage.keys import new_staging_token
from redfile_files.storage.lifecycle import Lifecycle
from redfile_files.storage.records import Appended, OffsetMismatch, Segment
from redfile_files.storage.staged import StagedChunk
from redfile_files.storage.tus import PendingAppend

log = structlog.get_logger("redfile.files.tus")

# a chunk this large goes to Redis as a staged SET sent ahead of the append script;
# a smaller one rides in the script's arguments, one key write fewer
SEND_AHEAD_MIN = 64 * 1024


class Appender:
    """Cuts a stream of bytes at the upload's chunk boundaries and puts each chunk in place (see the module docstring).

    ``offset_now`` reads the upload's offset as it is now (to report a mismatch found in the tail).
    """

    def __init__(
        self,
        lifecycle: Lifecycle,
        owner: str,
        upload_id: str,
        *,
        offset: int,
        chunk_size: int,
        sealer,
        length: int | None,
        staged: bool,
        reserve: bool,
        limit: int,
        offset_now: Callable[[], int],
        clock: Callable[[], float],
        metrics: FilesMetrics,
        allow_final: bool = False,
        body_length: int | None = None,
    ) -> None:
        self.lifecycle = lifecycle
        self.tus = lifecycle.tus
        self.owner = owner
        self.upload_id = upload_id
        self.length = length  # set with the first append
        self.staged = staged
        self.reserve = reserve  # a deferred length: reserve each chunk's new bytes before it goes in
        self.limit = limit
        self.allow_final = allow_final
        self.offset_now = offset_now
        self.clock = clock
        self.metrics = metrics
        self.size = chunk_size
        self.offset = offset  # the upload's offset as of the last append
        self.deadline: int | None = None
        self.index = offset // chunk_size
        self.pieces: list = []  # the chunk's bytes so far, as received (held, not copied)
        self.filled = 0  # their length
        self.fresh = 0  # how many of them are new (after the tail)
        self.received = 0
        self.sealer = sealer
        self.pending: list[Segment] = []
        self.pending_new = 0
        self.token = new_staging_token()  # this request's staging keys
        self._tail_loaded = False
        # sending each chunk's bytes on as they arrive needs its size up front (the body's length) and plain bytes;
        # and not a deferred length, whose chunk's bytes are reserved only once it is whole: none wait in Redis before
        self.body_left = body_length if isinstance(sealer, NullSealer) and not reserve else None
        self.sending: StagedChunk | None = None  # the chunk's staged SET being sent
        self.digest: ChunkDigest | None = None  # the sent chunk's digest, fed as its bytes go
        self.awaiting: tuple[PendingAppend, int, int] | None = None  # the last append, sent and not read: (it, new bytes, chunks)

    def _load_tail(self) -> None:
        """The bytes of the chunk the offset is inside of (they are rewritten with the new ones)."""
        self._tail_loaded = True
        fill = self.offset % self.size
        if fill == 0:
            return
        stored, part = self.lifecycle.files.fetch_chunk(self.upload_id, self.index)
        if stored is None or part is None:
            now = self.offset_now()
            if now != self.offset:  # another append wrote the tail again since (its old version goes)
                raise OffsetMismatch(now)
            log.error("tus_tail_missing", upload_id=self.upload_id, chunk_index=self.index)
            raise ApiError("stored_data_corrupt", details={"chunk_index": self.index})
        try:
            plain = self.sealer.open(self.index, stored)
        except ChunkCorrupt:
            raise ApiError("stored_data_corrupt", details={"chunk_index": self.index}) from None
        if len(plain) != fill or crc32c_hex(plain) != part.crc32c:
            raise OffsetMismatch(self.offset_now())  # it moved on since we looked
        self.pieces, self.filled = [plain], len(plain)

    def feed(self, piece) -> None:
        """Take the next bytes (``bytes``, or a view of bytes nobody changes: pieces are held until their chunk is in)."""
        if not len(piece):
            return
        if not self._tail_loaded:
            self._load_tail()
        view = memoryview(piece)
        self.received += len(view)
        if self.received > self.limit:
            raise ApiError("payload_too_large", "The body would go past the upload's length.", details={"remaining": self.limit})
        while len(view):
            take = min(self.size - self.filled, len(view))
            new = piece if take == len(piece) else view[:take]  # the piece itself when whole: bytes hash uncopied
            if self.body_left is not None:
                self._send(new)
            self.pieces.append(new)
            self.filled += take
            self.fresh += take
            view = view[take:]
            if self.filled == self.size:
                self._chunk_done()

    def _open_staged(self, size: int) -> StagedChunk:
        n = len(self.pending) if self.staged else self.index
        return self.tus.open_staged(self.upload_id, self.index, self.token, n, size, waits=self.staged)

    def _send(self, new) -> None:
        """Send ``new`` (the chunk's next bytes) on to Redis, opening the chunk's staged SET with its first ones."""
        assert self.body_left is not None
        if self.fresh == 0:  # the chunk's first new bytes: its size is known now
            size = self.filled + min(self.size - self.filled, self.body_left)
            if size >= SEND_AHEAD_MIN:
                self.sending = self._open_staged(size)
                self.digest = ChunkDigest()
                for tail in self.pieces:  # the tail's bytes, rewritten with the new ones
                    self.sending.write(tail)
                    self.digest.update(tail)
        self.body_left -= len(new)
        if self.sending is not None and self.digest is not None:
            self.sending.write(new)
            self.digest.update(new)

    def _chunk_done(self) -> None:
        sending, digest, self.sending, self.digest = self.sending, self.digest, None, None
        if sending is not None and digest is not None and sending.sent == sending.size == self.filled:  # sent whole as it arrived
            self._put(Segment(self.index, digest.part(), staged_key=sending.key), staged=sending)
        else:
            if sending is not None:  # the body ended early: what arrived is held in self.pieces
                sending.abandon()
            chunk = b"".join(self.pieces)
            part = part_of(chunk)
            stored = self.sealer.seal(self.index, chunk)
            if self.staged or len(stored) >= SEND_AHEAD_MIN:
                staged = self._open_staged(len(stored))
                try:
                    staged.write(stored)
                except BaseException:
                    staged.abandon()
                    raise
                self._put(Segment(self.index, part, staged_key=staged.key), staged=staged)
            else:
                self._put(Segment(self.index, part, data=stored))
        self.index += 1
        self.pieces, self.filled, self.fresh = [], 0, 0

    def _put(self, segment: Segment, staged: StagedChunk | None = None) -> None:
        """Append ``segment`` (ending its staged SET with the script), or, while a checksum waits, end the SET alone and
        keep the segment for the one append after the check.  Whatever goes wrong, ``staged`` is not left open."""
        try:
            if self.staged:
                assert staged is not None
                staged.finish()
                self.pending.append(segment)
                self.pending_new += self.fresh
            else:
                self._append([segment], self.fresh, staged=staged)
        except BaseException:
            if staged is not None:
                staged.abandon()  # a no-op once it is finished or closed
            raise

    def finish(self) -> None:
        """Put the last (partial) chunk in place, or every staged one at once; set a length with no bytes."""
        if self.fresh:
            self._chunk_done()
        self._settle()
        if self.staged:
            if self.pending or self.length is not None:
                self._append(self.pending, self.pending_new)
            self.pending, self.pending_new = [], 0  # in place now: nothing left to discard
        elif self.length is not None:
            self._append([], 0)

    def _append(self, segments: list[Segment], new: int, staged: StagedChunk | None = None) -> None:
        """Append ``segments``.  One ending a staged SET (but not for a deferred length or a concatenation) is only
        sent: its replies are read when the next append goes, at ``finish`` or in ``abandon``."""
        self._settle()  # the append before must be in place before this one's script is sent (the offsets)
        now = iso(self.clock())
        expected, new_offset = self.offset, self.offset + new
        if staged is not None and not self.reserve and not self.allow_final:
            pending = self.tus.append_later(
                self.upload_id,
                owner=self.owner,
                expected=expected,
                new_offset=new_offset,
                segments=segments,
                now_iso=now,
                staged=staged,
                length=self.length,
            )
            self.awaiting = (pending, new, len(segments))
            return
        grow = new if self.reserve else 0  # refused: _put abandons the staged SET
        done = self.lifecycle.append(
            self.upload_id,
            owner=self.owner,
            expected=expected,
            new_offset=new_offset,
            segments=segments,
            now_iso=now,
            length=self.length,
            allow_final=self.allow_final,
            staged=staged,
            grow=grow,
        )
        self._appended(done, new, len(segments))

    def _settle(self) -> None:
        """Read the replies of the append that was only sent, if any: it is in place, or this raises why not."""
        if self.awaiting is None:
            return
        (pending, new, count), self.awaiting = self.awaiting, None
        self._appended(pending.result(), new, count)

    def _appended(self, done: Appended, new: int, count: int) -> None:
        self.offset += new
        self.length = None
        self.deadline = done.deadline
        if self.allow_final:
            return  # a concatenation copies bytes that were counted when they reached the partials
        for _ in range(count):
            self.metrics.chunk_stored()
        self.metrics.bytes_uploaded(new)

    def abandon(self) -> None:
        """Delete staged chunks that were not put in place (and give up a chunk's SET still being sent).

        An append only sent is read first, so the offset and the counts say what is in place; its error, if
        it has one, is not this request's to raise any more (another is being raised)."""
        try:
            self._settle()
        except Exception:  # see the docstring
            pass
        finally:
            if self.sending is not None:
                self.sending.abandon()
                self.sending, self.digest = None, None
            staging = [s.staged_key for s in self.pending if s.staged_key]
            self.pending, self.pending_new = [], 0
            if staging:
                self.tus.discard(staging)
