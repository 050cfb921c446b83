"""A request body of known length read straight from gunicorn's socket.

gunicorn hands a WSGI app its body as ``Body`` over a ``LengthReader`` over a
``SocketUnreader``; each layer keeps its own ``BytesIO``, so every byte of a
chunk ``PUT`` would be copied three or four times in Python before the app saw it
(``getvalue``, slices, the next layer's ``write``) — a quarter of the request
thread's time by py-spy.  ``direct(environ["wsgi.input"])`` gives an object
with the same ``read(n)`` that hands out what gunicorn already buffered, then
``recv``s the rest of the body from the socket itself, keeping gunicorn's
count of what is left of the body exact, so the connection's next request is
read where it starts.  Anything else (another server, the test client,
chunked bodies) is returned as it is.

Only for endpoints that read exactly ``Content-Length`` bytes and deal with a
body that ends early themselves (``LENGTH_CHECKED_ENDPOINTS``): the socket's
``OSError`` or end is theirs to turn into a 400 (a chunk ``PUT``, ``intake``)
or into keeping what arrived (tus, ``BodyInterrupted``).  A read hands out
what has arrived, up to ``n`` bytes, and waits only when nothing has.
"""

from __future__ import annotations

from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader


def _held(buf) -> int:
    with buf.getbuffer() as view:  # gunicorn's BytesIO buffers hold exactly what is pending
        return view.nbytes


class DirectBody:
    """``read(n)``: at most ``n`` bytes of the body, b"" at its end (or when the client closed)."""

    def __init__(self, body, reader, unreader) -> None:
        self._body = body
        self._reader = reader
        self._unreader = unreader
        self._sock = unreader.sock
        self._direct = False

    def _buffered(self) -> int:
        """Body bytes gunicorn holds already: its ``Body``'s, and its socket reader's up to the body's end."""
        return _held(self._body.buf) + min(_held(self._unreader.buf), self._reader.length)

    def read(self, size: int) -> bytes:
        if size <= 0:
            return b""
        if not self._direct:
            buffered = self._buffered()
            if buffered:
                return self._body.read(min(size, buffered))  # through gunicorn's layers, no recv
            self._direct = True  # from here on, the rest of the body is in the socket only
        size = min(size, self._reader.length)
        if size <= 0:
            return b""
        try:
            data = self._sock.recv(size)
        except OSError:
            self._body.failed = True  # where the next request starts is unknown: gunicorn closes the connection
            raise
        self._reader.length -= len(data)
        if not data:
            self._body.failed = True
        return data


def direct(wsgi_input):
    """``wsgi_input`` read straight from its socket when it is gunicorn's body of known length; else itself."""
    if type(wsgi_input) is not Body:
        return wsgi_input
    reader = wsgi_input.reader
    unreader = getattr(reader, "unreader", None)
    if type(reader) is not LengthReader or type(unreader) is not SocketUnreader:
        return wsgi_input
    return DirectBody(wsgi_input, reader, unreader)
