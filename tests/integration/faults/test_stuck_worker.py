"""Issue 18: a worker whose request threads are stuck for good is replaced; a slow but progressing one is not.

gunicorn's heartbeat watches a worker's main loop only, so a worker whose every request thread is blocked for
good kept answering its heartbeat and failed every request until someone restarted the pod.  Here a real gunicorn
master (one worker, four threads) serves the files app with two test routes (``watchdog_app``): one that never
returns, one that streams slowly.  With ``WORKER_STUCK_AFTER`` at 1.5 s, the worker with four stuck requests
must log ``worker_stuck``, exit and be replaced, and requests then succeed; a stream that takes much longer than
the bound, slow in the app or slow at the client, must finish on the same worker.
"""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path

import pytest
import requests

from .helpers import answer_of, wait_until

APP = "watchdog_app:create_app()"
STUCK_AFTER = 1.5
THREADS = 4
ENV = {
    "PYTHONPATH": str(Path(__file__).parent),
    "WORKER_STUCK_AFTER": str(STUCK_AFTER),
    "GUNICORN_THREADS": str(THREADS),
    "GUNICORN_GRACEFUL_TIMEOUT": "3",
    "LOG_LEVEL": "INFO",
}


@pytest.fixture
def server(redis_url, gunicorn):
    (started,) = gunicorn("files", redis_url, app=APP, **ENV)
    return started


def ask(port: int, path: str) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=30)
    sock.sendall(f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    return sock


def ready(url: str) -> bool:
    """Whether ``/readyz`` answers 200 within 2 s: a fresh worker still starting leaves the request waiting."""
    try:
        return requests.get(f"{url}/readyz", timeout=2).status_code == 200
    except requests.RequestException:
        return False


def stuck_lines(log_path: Path) -> list[dict]:
    lines = []
    for line in log_path.read_text(errors="replace").splitlines():
        if '"worker_stuck"' in line:
            lines.append(json.loads(line))
    return lines


@pytest.mark.timing
def test_a_worker_whose_threads_are_all_stuck_is_replaced_and_requests_succeed(server):
    (old,) = server.worker_pids()
    blocked = [ask(server.port, "/test/block") for _ in range(THREADS)]
    try:
        started = time.monotonic()
        wait_until(lambda: [pid for pid in server.worker_pids() if pid != old], 30, "a fresh worker")
        replaced = time.monotonic() - started
        # within the bound, one turn of the main loop, the exit and the master's next look (about a second each)
        assert replaced < STUCK_AFTER + 5, replaced
        assert all(answer_of(sock) == b"" for sock in blocked)  # cut, never a made-up answer
    finally:
        for sock in blocked:
            sock.close()
    wait_until(lambda: ready(server.url), 30, "the fresh worker to serve")
    answer = requests.get(f"{server.url}/test/trickle", params={"pieces": 2, "size": 10, "every": 0}, timeout=10)
    assert answer.status_code == 200 and answer.content == b"x" * 20
    (line,) = stuck_lines(server.log_path)
    assert line["pid"] == old and line["level"] == "error" and line["action"] == "exit"
    assert line["stuck"] and all(s["route"] == "/test/block" and s["method"] == "GET" and s["seconds"] > STUCK_AFTER for s in line["stuck"])
    assert f"Worker (pid:{old}) exited with code 70" in server.log_path.read_text(errors="replace")
    assert server.proc.poll() is None  # the master lived on


def test_a_stream_slow_in_the_app_but_progressing_is_not_cut(server):
    (worker,) = server.worker_pids()
    # 6 s in all, 0.5 s of the app's own time before each piece: four times the bound, never the bound at once
    answer = requests.get(f"{server.url}/test/trickle", params={"pieces": 12, "size": 1000, "every": 0.5}, timeout=30)
    assert answer.status_code == 200 and answer.content == b"x" * 12_000
    assert server.worker_pids() == [worker] and stuck_lines(server.log_path) == []


def test_a_stream_to_a_client_that_pauses_is_not_cut(server):
    (worker,) = server.worker_pids()
    size, pieces = 1 << 20, 32  # 32 MiB: far more than the sockets' buffers hold, so the worker waits on the client
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.settimeout(30)
    sock.connect(("127.0.0.1", server.port))
    try:
        sock.sendall(f"GET /test/trickle?pieces={pieces}&size={size}&every=0 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        received = 0
        for pause in (STUCK_AFTER * 2, STUCK_AFTER * 2):  # the client reads nothing for twice the bound, twice
            received += len(sock.recv(65536))
            time.sleep(pause)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            data = sock.recv(1 << 20)
            if not data:
                break
            received += len(data)
    finally:
        sock.close()
    assert received > size * pieces  # the whole body (and its headers)
    assert server.worker_pids() == [worker] and stuck_lines(server.log_path) == []
