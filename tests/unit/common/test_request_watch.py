"""Issue 18: a worker whose request threads are stuck for good heals; one that is slow but progressing does not.

The decision (``request_watch.stuck``), what counts as progress (a read from or a write to the client,
marked by ``WatchedSocket``), and what the worker does when a request is stuck (``ThreadWorker.notify``).
"""

from __future__ import annotations

import socket
import threading
import time
from types import SimpleNamespace

import pytest
from gunicorn import glogging
from gunicorn.config import Config

from redfile_common.gunicorn_worker import ThreadWorker
from redfile_common.request_watch import UNMATCHED, Watch, WatchedSocket, WatchSettings, adopt, describe, stuck

AFTER = 120.0


def watch(since: float, *, waiting: bool = False, rule: str | None = None, method: str = "GET") -> Watch:
    w = Watch(conn=None, now=since)
    w.waiting = waiting
    request = SimpleNamespace(url_rule=SimpleNamespace(rule=rule) if rule else None)
    w.environ = {"REQUEST_METHOD": method, "werkzeug.request": request, "PATH_INFO": "/s/secret-token"}
    return w


def test_a_request_in_the_app_without_progress_past_the_bound_is_stuck():
    now = 1000.0
    in_app = watch(now - AFTER - 1, rule="/files/<file:file_id>")
    assert stuck([in_app], now, AFTER) == [in_app]
    assert describe([in_app], now) == [{"method": "GET", "route": "/files/<file_id>", "seconds": 121.0}]


def test_a_request_blocked_on_its_client_or_recently_progressing_is_not_stuck():
    now = 1000.0
    on_client = watch(now - 10 * AFTER, waiting=True)  # a client that stopped reading its download
    progressing = watch(now - AFTER + 1)  # a stream whose last piece went out within the bound
    assert stuck([on_client, progressing], now, AFTER) == []


def test_a_stuck_request_is_named_by_its_route_never_its_path():
    unrouted = watch(0.0)
    assert unrouted.route() == UNMATCHED
    assert "secret-token" not in repr(describe([unrouted, watch(0.0, rule="/s/<token>")], 200.0))
    assert Watch(conn=None).method() == "-"  # before the app has the request


def wait_for(predicate, seconds: float = 5.0) -> None:
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


def test_reads_and_writes_on_the_client_socket_mark_waiting_then_progress():
    ours, theirs = socket.socketpair()
    try:
        sock = adopt(ours)
        assert isinstance(sock, WatchedSocket) and ours.fileno() == -1
        w = sock.watch = Watch(conn=None, now=0.0)
        got: list[bytes] = []
        reader = threading.Thread(target=lambda: got.append(sock.recv(10)), daemon=True)
        reader.start()
        wait_for(lambda: w.waiting)  # blocked on the client: never stuck, however long
        assert stuck([w], time.monotonic(), AFTER) == []
        theirs.sendall(b"body")
        reader.join(5)
        assert got == [b"body"] and not w.waiting and w.since > 0.0  # a read returned: progress
        before = w.since
        sock.sendall(b"answer")
        assert theirs.recv(10) == b"answer" and w.since >= before
        sock.close()
    finally:
        ours.close()
        theirs.close()


def test_a_tls_or_already_watched_socket_is_left_as_it_is():
    a, b = socket.socketpair()
    try:
        watched = adopt(a)
        assert adopt(watched) is watched
        assert adopt("not a socket") == "not a socket"
        watched.close()
    finally:
        a.close()
        b.close()


def test_the_setting_is_seconds_and_zero_turns_the_watch_off():
    assert WatchSettings.from_env({}, "files").stuck_after == 120.0
    assert WatchSettings.from_env({"WORKER_STUCK_AFTER": "0"}, "files").stuck_after == 0.0
    for bad in ("soon", "-1", "nan"):
        with pytest.raises(ValueError, match="WORKER_STUCK_AFTER"):
            WatchSettings.from_env({"WORKER_STUCK_AFTER": bad}, "files")


def test_a_worker_with_a_stuck_request_cuts_it_and_stops(capsys):
    cfg = Config()
    worker = ThreadWorker(1, 0, [], None, 30, cfg, glogging.Logger(cfg))
    worker.method_queue.init()
    worker.watch_settings = WatchSettings(stuck_after=AFTER, service="files")
    ours, theirs = socket.socketpair()
    try:
        conn = SimpleNamespace(sock=ours)
        worker.nr_conns = 2
        worker.alive = True
        stuck_one = Watch(conn, now=time.monotonic() - AFTER - 5)
        fine = Watch(SimpleNamespace(sock=None))
        worker._watches |= {stuck_one, fine}
        worker.notify()
        assert not worker.alive  # stopping, as on SIGTERM: the request still progressing may finish
        assert worker.nr_conns == 1  # the stuck one is written off: the drain does not wait for it
        assert theirs.recv(10) == b""  # its client is cut at once
        worker.notify()  # once only
        out = capsys.readouterr().out
        assert out.count("worker_stuck") == 1 and "<unmatched>" in out, out
    finally:
        worker.tmp.close()
        ours.close()
        theirs.close()
