"""Guards for the private APIs of redis-py and gunicorn that Redfile leans on.

Each dependency is bounded above in pyproject (redis <9, gunicorn <28); these tests fail
loudly when a version inside the bound changes the shape the code relies on, and are the
check to run before raising a bound.
"""

from __future__ import annotations

import inspect
import io
import socket
from typing import Any

import pytest
from gunicorn.config import Config
from gunicorn.http.body import Body, LengthReader
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import SocketUnreader
from redis.connection import HIREDIS_AVAILABLE, Connection, ConnectionPool, HiredisRespSerializer, PythonRespSerializer

from redfile_common.redis_client import LARGE_VALUE, HybridPacker, budgeted_connection_class
from redfile_files.uploads.direct_input import DirectBody, direct

# -- redis-py: the command packer (libs/common redis_client) ------------------------------------


def test_the_connection_builds_its_packer_through_the_hook_we_override():
    assert list(inspect.signature(Connection._construct_command_packer).parameters) == ["self", "packer"]
    conn = budgeted_connection_class(Connection)()
    assert HIREDIS_AVAILABLE
    assert isinstance(conn._command_packer, HybridPacker)  # the hook's result is what pack_command uses
    assert isinstance(conn._buffer_cutoff, int) and callable(conn.encoder.encode)
    big = b"v" * (LARGE_VALUE + 1)
    assert b"".join(bytes(p) for p in conn.pack_command("SET", "k", big)) == b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$%d\r\n%s\r\n" % (
        len(big),
        big,
    )


def test_the_resp_serializers_take_what_the_packer_passes():
    assert list(inspect.signature(PythonRespSerializer.__init__).parameters)[1:] == ["buffer_cutoff", "encode"]
    python = PythonRespSerializer(6000, Connection().encoder.encode)
    hiredis: Any = HiredisRespSerializer()  # its stub types pack's arguments as lists; it takes a command's parts
    assert b"".join(python.pack("GET", "k")) == b"".join(hiredis.pack("GET", "k")) == b"*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"


def test_the_connection_connects_and_sends_through_what_the_budget_cuts():
    # redis_client cuts _connect's socket_connect_timeout and sets the socket's timeout before each send
    # (the parser reads with the socket's timeout when given none): issue 18's per-request budget
    assert list(inspect.signature(Connection._connect).parameters) == ["self"]
    conn = budgeted_connection_class(Connection)(socket_connect_timeout=1.5)
    assert conn.socket_connect_timeout == 1.5 and conn._sock is None
    assert "socket_connect_timeout" in inspect.getsource(Connection._connect)
    assert "self._sock" in inspect.getsource(Connection.send_packed_command)
    from redis._parsers.hiredis import _HiredisParser

    assert "custom_timeout = timeout is not SENTINEL" in inspect.getsource(_HiredisParser.read_from_socket)


# -- redis-py: a chunk's SET streamed on a pooled connection (files storage) ---------------------


def test_a_pooled_connection_is_taken_and_given_back_without_arguments():
    pool = ConnectionPool()
    inspect.signature(pool.get_connection).bind()  # called with no command name
    inspect.signature(pool.release).bind(object())


@pytest.mark.parametrize(
    ("method", "call"),
    [
        ("send_packed_command", lambda sig: sig.bind([b"x"], check_health=False)),
        ("pack_command", lambda sig: sig.bind("EVALSHA", "sha", 1, "k", "a")),
        ("read_response", lambda sig: sig.bind()),
        ("disconnect", lambda sig: sig.bind()),
    ],
)
def test_the_connection_methods_the_staged_set_calls(method, call):
    call(inspect.signature(getattr(Connection(), method)))


# -- gunicorn: a body read straight from the socket (files uploads.direct_input) ---------------


def gunicorn_body(payload: bytes, length: int):
    ours, theirs = socket.socketpair()
    theirs.sendall(payload)
    unreader = SocketUnreader(ours)
    reader = LengthReader(unreader, length)
    return Body(reader), reader, unreader, (ours, theirs)


def test_gunicorns_body_layers_have_the_attributes_direct_input_reads():
    body, reader, unreader, socks = gunicorn_body(b"0123456789", 10)
    try:
        assert body.reader is reader and reader.unreader is unreader and unreader.sock is socks[0]
        assert reader.length == 10 and body.failed is False
        assert isinstance(body.buf, io.BytesIO) and isinstance(unreader.buf, io.BytesIO)
        wrapped = direct(body)
        assert isinstance(wrapped, DirectBody)
        assert wrapped.read(4) + wrapped.read(100) == b"0123456789" and reader.length == 0 and wrapped.read(1) == b""
    finally:
        for s in socks:
            s.close()


def test_a_failed_body_makes_gunicorn_close_the_connection():
    ours, theirs = socket.socketpair()
    try:
        theirs.sendall(b"PUT /x HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n0123")
        parser = RequestParser(Config(), ours, ("127.0.0.1", 1))
        request = next(parser)
        assert type(request.body) is Body and type(request.body.reader) is LengthReader
        request.body.failed = True  # what DirectBody sets when the socket ends or fails mid-body
        assert parser.finish_body() is False
    finally:
        ours.close()
        theirs.close()


# -- gunicorn: the threaded worker's stop (libs/common gunicorn_worker) --------------------------


def test_the_gthread_worker_has_what_the_stop_reaches():
    from gunicorn.workers import base, gthread

    from redfile_common.gunicorn_worker import ThreadWorker

    assert issubclass(ThreadWorker, gthread.ThreadWorker)
    # overridden: the signal handlers base.Worker.init_signals installs, and the per-connection call in a thread
    assert list(inspect.signature(gthread.ThreadWorker.handle).parameters) == ["self", "conn"]
    for handler in ("handle_quit", "handle_exit"):
        assert list(inspect.signature(getattr(base.Worker, handler)).parameters) == ["self", "sig", "frame"]
    assert "self.handle_quit" in inspect.getsource(base.Worker.init_signals)
    # read: the connections the poller keeps, the callback queue that wakes the loop, and a connection's socket
    worker = gthread.ThreadWorker(1, 0, [], None, 30, Config(), None)
    assert {type(worker.keepalived_conns).__name__, type(worker.pending_conns).__name__} == {"deque"}
    assert callable(worker.method_queue.defer)
    conn = gthread.TConn(Config(), socket.socket(), ("127.0.0.1", 1), ("127.0.0.1", 2))
    try:
        assert isinstance(conn.sock, socket.socket)
    finally:
        conn.sock.close()
    # the loop that ends when ``alive`` turns false, then waits for the connections within the grace period
    source = inspect.getsource(gthread.ThreadWorker.run)
    assert "while self.alive" in source and "graceful_timeout" in source


def test_the_gthread_worker_has_what_the_probe_lane_reaches():
    # gunicorn_worker.ThreadWorker.enqueue_req: a /healthz to a thread of its own, a connection with nothing sent to the poller
    from gunicorn.workers import gthread

    assert list(inspect.signature(gthread.ThreadWorker.enqueue_req).parameters) == ["self", "conn"]
    assert list(inspect.signature(gthread.ThreadWorker.on_pending_socket_readable).parameters) == ["self", "conn", "client"]
    assert list(inspect.signature(gthread.ThreadWorker.finish_request).parameters) == ["self", "conn", "fs"]
    assert "self.enqueue_req(conn)" in inspect.getsource(gthread.ThreadWorker.accept)
    assert "self.pending_conns" in inspect.getsource(gthread.ThreadWorker.murder_pending)
    conn = gthread.TConn(Config(), socket.socket(), ("127.0.0.1", 1), ("127.0.0.1", 2))
    try:
        assert conn.initialized is False and conn.data_ready is False
    finally:
        conn.sock.close()
