"""A chunk's body received, stored and hashed at once.

Rather than three stages one after another (read the whole body into a buffer,
hash it, ``SET`` it), each piece read from the request goes straight on to
Redis (``storage.staged.StagedChunk``: one ``SET`` whose value is
sent as the body arrives) and to the digests, and the request thread never
holds the chunk in one buffer.

BLAKE3 and CRC32C, which every chunk gets, run at several GB/s and are fed in
the request thread.  When a SHA-256 is being computed too (the client sent one
to verify, or the upload wants the file's), ``threaded``: each digest runs in a
thread of its own (hashlib releases the GIL while it hashes a large buffer), so
receiving, storing and hashing overlap on both cores.  Measured both ways
(docs/performance.md): a thread hand-off per piece costs more than
BLAKE3 and CRC32C themselves, and saves much more than it costs for SHA-256.
What a hashing thread has not consumed yet waits in its queue, so a worker
holds at most one chunk per request.

No Flask here: the body is any object with ``read(n)``.
"""

from __future__ import annotations

import queue
import threading
from typing import Protocol

from redfile_common.errors import ApiError

PIECE = 1024 * 1024
THREADED_MIN = PIECE // 2  # below this, a thread costs more than hashing in the request thread


class Digest(Protocol):
    def update(self, data) -> None: ...


class Sink(Protocol):
    def write(self, piece) -> None: ...


class _Hasher:
    """Feeds pieces, in order, to one digest in a thread of its own."""

    def __init__(self, digest: Digest) -> None:
        self._digest = digest
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self.error: Exception | None = None
        self._thread = threading.Thread(target=self._run, name="redfile-hash", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while (piece := self._queue.get()) is not None:
            if self.error is None:
                try:
                    self._digest.update(piece)
                except Exception as exc:  # handed to the request thread by close()
                    self.error = exc

    def feed(self, piece) -> None:
        self._queue.put(piece)

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


def body_ended_early() -> ApiError:
    return ApiError("bad_request", "The body ended before Content-Length bytes arrived.")


def _read(body, size: int) -> bytes:
    """``body.read(size)``; a connection the client reset is a body that ended early (the server's own
    input raises ``OSError`` for it: ``LENGTH_CHECKED_ENDPOINTS`` read it without werkzeug's wrapper)."""
    try:
        return body.read(size)
    except OSError:
        raise body_ended_early() from None


def stream_into(body, length: int, sink: Sink, digests: list[Digest], *, threaded: bool = True) -> None:
    """Read exactly ``length`` bytes from ``body`` in pieces, writing each to ``sink`` and feeding it to ``digests``.

    ``threaded``: each digest in a thread of its own (for bodies of ``THREADED_MIN`` and more).
    Raises ``bad_request`` when the body ends early; the digests are complete
    when this returns (and must not be used when it raises).
    """
    hashers = [_Hasher(d) for d in digests] if threaded and length >= THREADED_MIN else []
    try:
        got = 0
        while got < length:
            piece = _read(body, min(PIECE, length - got))
            if not piece:
                raise body_ended_early()
            if hashers:
                for hasher in hashers:
                    hasher.feed(piece)
            else:
                for digest in digests:
                    digest.update(piece)
            sink.write(piece)
            got += len(piece)
    finally:
        for hasher in hashers:
            hasher.close()
    for hasher in hashers:
        if hasher.error is not None:
            raise hasher.error


def read_whole(body, length: int | None, limit: int) -> bytearray:
    """The whole body in one buffer (``length`` None: chunked transfer encoding), at most ``limit`` bytes."""
    if length is not None:
        buf = bytearray(length)
        view = memoryview(buf)
        pos = 0
        while pos < length:
            piece = _read(body, min(PIECE, length - pos))
            if not piece:
                raise body_ended_early()
            view[pos : pos + len(piece)] = piece
            pos += len(piece)
        return buf
    buf = bytearray()
    while piece := _read(body, PIECE):
        if len(buf) + len(piece) > limit:
            raise ApiError("payload_too_large", "The chunk is too large.", details={"max_chunk_bytes": limit})
        buf += piece
    return buf
