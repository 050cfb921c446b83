"""Reading a file back: its chunks in order, each verified (GCM tag and CRC32C) before any of it is handed out."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from itertools import accumulate

import google_crc32c
import structlog

from redfile_common import deadline
from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.crypto import SEAL_OVERHEAD, ChunkCorrupt, Encryption
from redfile_files.records import FileRecord
from redfile_files.storage.files import FileStore
from redfile_files.storage.records import ChunkMissing, ChunksUnreachable

log = structlog.get_logger("redfile.files")

READ_AHEAD_THREADS = 32  # downloads fetching their next chunk at once, per process
UNREACHABLE_RETRY_AFTER = 5  # seconds: a primary down comes back, or its replica is promoted, in a few


class FileGone(ChunkMissing):
    """A chunk is missing because its file was deleted (or expired) while it was being read: a race, not damage.

    Not counted as a storage checksum failure; a download that has not sent its headers yet answers
    404, one that has is cut short as for any missing chunk.
    """


class Reader:
    """Reads files back for downloads, texts, zips, tus concatenation and the consistency check.

    Each read fetches the next chunk in a thread of its own while the current one is handed out:
    ``READ_AHEAD_THREADS`` per process, started on first use and stopped by ``close``.
    """

    def __init__(self, store: FileStore, encryption: Encryption, metrics: FilesMetrics | None = None) -> None:
        self.store = store
        self.encryption = encryption
        self.metrics = metrics or FilesMetrics.null()
        self._ahead = ThreadPoolExecutor(max_workers=READ_AHEAD_THREADS, thread_name_prefix="redfile-read-ahead")

    def close(self) -> None:
        self._ahead.shutdown(wait=False, cancel_futures=True)

    def read_whole(self, record: FileRecord, *, gone: ApiError) -> bytes:
        """A small file's bytes at once (texts): ``gone`` when it was deleted meanwhile, ``stored_data_corrupt`` when damaged."""
        try:
            return b"".join(self.read_chunks(record))
        except FileGone:
            raise gone from None
        except (ChunkMissing, ChunkCorrupt) as exc:  # counted by read_chunks
            log.error("text_chunk_unreadable", file_id=record.id, chunk_index=exc.index, reason=type(exc).__name__)
            raise ApiError("stored_data_corrupt", details={"chunk_index": exc.index}) from None

    def read_chunks(self, record: FileRecord, start: int = 0, end: int | None = None, *, by_chunk: bool = False) -> Iterator[bytes]:
        """The file's bytes ``[start, end)``, chunk by chunk, each verified before any of it is yielded.

        The part records of the range are read once (``locate_chunks``), then each chunk in one round trip
        (``fetch_pieces_at``).  A chunk's bytes come in the pieces Redis sent them in, never joined,
        unless it is encrypted (opened whole) or ``by_chunk`` asks for one piece per chunk (the
        consistency check hashes each chunk).  A chunk that vanished ends the stream with ``FileGone``
        when its file went with it (a concurrent delete or expiry), else with ``ChunkMissing``; one
        that fails its check with ``ChunkCorrupt``: never wrong bytes.  The last two are counted as
        storage checksum failures; each chunk's bytes are counted as downloaded as it is handed out.
        On a Redis Cluster every primary that holds a chunk of the range is asked first: one that does not
        answer is the 503 ``storage_unavailable`` now, before a download has sent its headers, not a cut later.
        """
        end = record.size if end is None else end
        if start >= end:
            return iter(())
        try:
            sealer = self.encryption.sealer(record.id, record.dek)
        except ChunkCorrupt as exc:
            log.error("file_key_unusable", file_id=record.id, reason=str(exc))
            self.metrics.checksum_failure("storage")
            raise ApiError("stored_data_corrupt", "The file's encryption key cannot be opened.") from None
        offset_of: Callable[[int], int]
        if record.chunk_size:
            size = record.chunk_size
            first, last = start // size, (end - 1) // size
            offset_of = size.__mul__
        else:
            table = self.store.parts(record.id)
            offsets = [0, *accumulate(table[i].size if i in table else 0 for i in range(record.total_chunks))]
            first = max(i for i in range(record.total_chunks) if offsets[i] <= start)
            last = max(i for i in range(record.total_chunks) if offsets[i] < end)
            offset_of = offsets.__getitem__

        located = self.store.locate_chunks(record.id, range(first, last + 1))  # a chunk with none: missing

        overhead = SEAL_OVERHEAD if sealer.encrypted else 0

        def fetch(index: int) -> list[bytes]:
            key, part = located.get(index, (None, None))
            stored = None if key is None or part is None else self.store.fetch_pieces_at(key, part.size + overhead)
            if stored is None or part is None:
                # a delete removes meta and part table at once, then the chunks: no meta now means the file went meanwhile
                raise FileGone(index) if self.store.file_sizes([record.id])[0] is None else ChunkMissing(index)
            if sealer.encrypted or (by_chunk and len(stored) > 1):
                stored = [sealer.open(index, b"".join(stored))]
            crc = google_crc32c.Checksum()
            for piece in stored:
                crc.update(piece)
            if sum(map(len, stored)) != part.size or crc.digest().hex() != part.crc32c:
                raise ChunkCorrupt(index, "checksum mismatch")
            return stored

        if last > first:  # the first chunk is read before a download's headers go; the others' primaries are asked now
            try:
                self.store.chunks.check_holders(record.id, range(first + 1, last + 1))
            except ChunksUnreachable:
                log.warning("file_chunks_unreachable", file_id=record.id)
                raise ApiError("storage_unavailable", headers={"Retry-After": str(UNREACHABLE_RETRY_AFTER)}) from None
        return self._pieces(fetch, first, last, offset_of, start, end)

    def _pieces(self, fetch, first: int, last: int, offset_of: Callable[[int], int], start: int, end: int) -> Iterator[bytes]:
        metrics = self.metrics
        pending: Future = self._ahead.submit(deadline.carried(fetch), first)  # the request's budget goes along
        try:
            for index in range(first, last + 1):
                try:
                    plain = pending.result()
                except FileGone:
                    raise
                except (ChunkMissing, ChunkCorrupt):
                    metrics.checksum_failure("storage")
                    raise
                if index < last:
                    pending = self._ahead.submit(deadline.carried(fetch), index + 1)
                base = offset_of(index)
                metrics.bytes_downloaded(min(end, base + sum(map(len, plain))) - max(start, base))  # the chunk's, once
                pos = base
                for whole in plain:
                    lo, hi = max(0, start - pos), min(len(whole), end - pos)
                    pos += len(whole)
                    if lo < hi:
                        yield whole if (lo, hi) == (0, len(whole)) else whole[lo:hi]
                plain = whole = None  # nothing of this chunk held while the generator waits
        finally:
            pending.cancel()
