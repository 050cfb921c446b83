"""Issue 17, item 5: a stop never waits for the master's SIGKILL.

Ctrl-C on ``make run`` took 22 s now and then and logged "Worker (pid:…) was sent SIGKILL! Perhaps out of
memory?": a worker that could not exit was killed when its grace period (GUNICORN_GRACEFUL_TIMEOUT, 20 s)
ended.  Two causes, both reproduced here on a real gunicorn master with the project's worker class
(redfile_common.gunicorn_worker): a thread blocked on a client that stalls mid-request holds the exiting
worker, and gthread's quick-stop handler deadlocks on the thread pool's lock (tests/unit/common/
test_gunicorn_worker.py holds that one deterministically).

The graceful stop (SIGTERM, as Kubernetes sends it) still lets a request that finishes within the grace
period be answered.  The waits below are upper bounds against a hang, not measurements: the failure they
catch is the master's SIGKILL, which its log names.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess

import pytest

from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

from .helpers import RetryingUploader, answer_of, half_sent_put, server_unread, stored_parts, wait_until

CHUNK = 64 * 1024
GRACE = 6  # seconds: GUNICORN_GRACEFUL_TIMEOUT of the servers below; the master's SIGKILL comes when it ends


@pytest.fixture
def files_server(redis_url, redis_client, gunicorn):
    """A files server of two workers with a short grace period, a user's headers, and an upload session."""
    (files,) = gunicorn(
        "files", redis_url, WEB_CONCURRENCY="2", MAX_CHUNK_BYTES=str(CHUNK), GUNICORN_GRACEFUL_TIMEOUT=str(GRACE), LOG_LEVEL="INFO"
    )
    headers = auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice"))
    client = RetryingUploader(files.url, headers, os.urandom(CHUNK * 4), CHUNK, deadline=1e12)
    upload_id = client.create()
    return files, headers, client, upload_id


def stalled_connections(port: int, headers: dict, upload_id: str, piece: bytes) -> list[socket.socket]:
    """What holds a worker thread: a chunk half-sent, a connection opened with nothing sent, and one kept alive."""
    half = half_sent_put(port, headers, upload_id, 0, piece)
    wait_until(lambda: server_unread(port, half.getsockname()[1]) == 0, 10, "the worker to read the first half")
    silent = socket.create_connection(("127.0.0.1", port), timeout=30)
    kept = socket.create_connection(("127.0.0.1", port), timeout=30)
    kept.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    assert b"200 OK" in kept.recv(65536)
    return [half, silent, kept]


def stop(proc: subprocess.Popen, sig: signal.Signals, *, group: bool) -> int:
    """Send ``sig`` to the master (as Kubernetes does) or to its whole process group (as a terminal's Ctrl-C does)."""
    if group:
        os.killpg(proc.pid, sig)
    else:
        proc.send_signal(sig)
    return proc.wait(GRACE + 30)  # bound against a hang; the master SIGKILLs its workers at GRACE


def assert_no_worker_was_killed(files, workers: list[int]) -> None:
    """Each worker logged that its threads had ended (which a SIGKILL prevents), and the master logged no SIGKILL."""
    log = files.log_path.read_text(errors="replace")
    assert "SIGKILL" not in log, log[-3000:]
    assert all(f"Worker stopped (pid: {pid})" in log for pid in workers), (workers, log[-3000:])


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGQUIT], ids=["ctrl-c", "quick-stop"])
def test_a_quick_stop_of_the_whole_group_cuts_stalled_clients(files_server, sig):
    files, headers, client, upload_id = files_server
    socks = stalled_connections(files.port, headers, upload_id, client.piece(0))
    workers = files.worker_pids()
    try:
        assert stop(files.proc, sig, group=True) == 0
        assert_no_worker_was_killed(files, workers)
        assert answer_of(socks[0]) == b""  # the half-sent chunk was cut, not answered
    finally:
        for s in socks:
            s.close()


def test_a_graceful_stop_cuts_stalled_clients_before_the_grace_ends(files_server):
    files, headers, client, upload_id = files_server
    socks = stalled_connections(files.port, headers, upload_id, client.piece(0))
    workers = files.worker_pids()
    try:
        assert stop(files.proc, signal.SIGTERM, group=False) == 0
        assert_no_worker_was_killed(files, workers)
        assert answer_of(socks[0]) == b""
    finally:
        for s in socks:
            s.close()


def test_a_graceful_stop_answers_a_request_that_finishes_in_time(files_server, redis_client):
    files, headers, client, upload_id = files_server
    piece = client.piece(1)
    half = half_sent_put(files.port, headers, upload_id, 1, piece)
    try:
        wait_until(lambda: server_unread(files.port, half.getsockname()[1]) == 0, 10, "the worker to read the first half")
        workers = files.worker_pids()
        files.proc.send_signal(signal.SIGTERM)
        half.sendall(piece[len(piece) // 2 :])
        answer = answer_of(half)
        assert answer.startswith(b"HTTP/1.1 2"), answer[:300]
        assert files.proc.wait(GRACE + 30) == 0
        assert_no_worker_was_killed(files, workers)
        assert 1 in stored_parts(redis_client, upload_id)  # the chunk is stored
    finally:
        half.close()
