"""direct_input: a body of known length read straight from gunicorn's socket, its layers kept exact."""

import io
import socket

import pytest
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.unreader import SocketUnreader
from hypothesis import given, settings
from hypothesis import strategies as st

from redfile_files.uploads.direct_input import DirectBody, direct

NEXT = b"GET /next HTTP/1.1\r\nHost: x\r\n\r\n"


def gunicorn_body(sock, length: int, *, read_ahead: bytes = b"", body_buffered: bytes = b""):
    """gunicorn's body of ``length`` bytes on ``sock``, as after parsing the headers (bytes it already read held)."""
    unreader = SocketUnreader(sock)
    unreader.unread(read_ahead)
    reader = LengthReader(unreader, length - len(body_buffered))
    body = Body(reader)
    body.buf.write(body_buffered)
    return body


def read_all(body, length: int, piece: int) -> bytes:
    out = b""
    while len(out) < length:
        data = body.read(min(piece, length - len(out)))
        if not data:
            break
        out += data
    return out


@settings(max_examples=60, deadline=None)
@given(
    payload=st.binary(min_size=0, max_size=20_000),
    ahead=st.integers(min_value=0, max_value=25_000),
    in_body_buf=st.integers(min_value=0, max_value=500),
    piece=st.integers(min_value=1, max_value=9_000),
)
def test_the_body_is_read_whole_and_the_next_request_is_left_where_it_starts(payload, ahead, in_body_buf, piece):
    in_body_buf = min(in_body_buf, len(payload))
    wire = payload[in_body_buf:] + NEXT
    ahead = min(ahead, len(wire))
    a, b = socket.socketpair()
    try:
        b.sendall(wire[ahead:])
        body = gunicorn_body(a, len(payload), read_ahead=wire[:ahead], body_buffered=payload[:in_body_buf])
        reader = direct(body)
        assert isinstance(reader, DirectBody)
        assert read_all(reader, len(payload), piece) == payload
        assert reader.read(10) == b"" and body.reader.length == 0 and not body.failed
        # what is left, in gunicorn's buffer and then the socket, is exactly the next request
        b.close()
        rest = body.reader.unreader.buf.getvalue()
        while chunk := a.recv(65536):
            rest += chunk
        assert rest == NEXT
    finally:
        a.close()
        b.close()


def test_a_client_that_closes_early_ends_the_body_and_the_connection_is_not_reused():
    a, b = socket.socketpair()
    try:
        b.sendall(b"abc")
        b.close()
        body = gunicorn_body(a, 10)
        reader = direct(body)
        assert read_all(reader, 10, 4) == b"abc"
        assert body.failed  # gunicorn closes the connection instead of reading a next request from it
    finally:
        a.close()


def test_a_reset_connection_raises_and_marks_the_body_failed():
    class Reset:
        def recv(self, size):
            raise ConnectionResetError(104, "reset")

    unreader = SocketUnreader(Reset())
    body = Body(LengthReader(unreader, 5))
    with pytest.raises(ConnectionResetError):
        direct(body).read(5)
    assert body.failed


def test_anything_but_gunicorns_body_of_known_length_is_left_as_it_is():
    stream = io.BytesIO(b"x")
    assert direct(stream) is stream
    a, b = socket.socketpair()
    try:
        from gunicorn.http.body import EOFReader

        eof = Body(EOFReader(SocketUnreader(a)))
        assert direct(eof) is eof
    finally:
        a.close()
        b.close()
