"""Read the rest of a request body an answer left unread, after the answer is sent.

A service may answer before it reads a body: a 413 for a body over its limit, a 401, a chunk
refused for its size.  If the connection then closes with those bytes unread, the kernel sends
a reset instead of a clean close, and a reset can destroy the answer in the receive buffer of
whoever is in front (nginx, the Ingress controller) before it has read it: the client gets a
502 from the proxy instead of the service's 4xx.  gunicorn itself drains only 64 KiB.

``DrainUnreadBody`` wraps a WSGI app: once the answer has gone out (the response's ``close``,
which gunicorn calls after writing it), it reads and discards what is left of the body, up to
``limit`` bytes and ``seconds`` in all (the socket's timeout bounds each read), so the connection
closes cleanly or stays usable.  A body read to its end costs one empty read; a request without
a body is not wrapped at all.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Callable, Iterable

from werkzeug.exceptions import ClientDisconnected
from werkzeug.wsgi import ClosingIterator

PIECE = 64 * 1024


class DrainUnreadBody:
    def __init__(self, app: Callable, *, limit: int, seconds: float = 5.0) -> None:
        self.app = app
        self.limit = limit
        self.seconds = seconds

    def __call__(self, environ: dict, start_response: Callable) -> Iterable[bytes]:
        result = self.app(environ, start_response)
        if not _has_body(environ):
            return result
        return ClosingIterator(result, [lambda: self.drain(environ)])

    def drain(self, environ: dict) -> None:
        """Discard the rest of the body (up to the limit, until the deadline or a read error)."""
        stream = environ.get("wsgi.input")
        if stream is None:
            return
        sock = environ.get("gunicorn.socket")
        before = sock.gettimeout() if isinstance(sock, socket.socket) else None
        deadline, read = time.monotonic() + self.seconds, 0
        try:
            while read < self.limit:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                if isinstance(sock, socket.socket):
                    sock.settimeout(remaining)
                piece = stream.read(min(PIECE, self.limit - read))
                if not piece:
                    break
                read += len(piece)
        except (OSError, ValueError, ClientDisconnected):  # the client went away, or a malformed chunked body: nothing to save
            pass
        finally:
            if isinstance(sock, socket.socket):
                with contextlib.suppress(OSError):
                    sock.settimeout(before)


def _has_body(environ: dict) -> bool:
    if environ.get("HTTP_TRANSFER_ENCODING", "").lower().endswith("chunked"):
        return True
    try:
        return int(environ.get("CONTENT_LENGTH") or 0) > 0
    except ValueError:
        return False
