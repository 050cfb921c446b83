"""The shared gunicorn configuration's listening sockets (``gunicorn_conf``, docs/operations.md "Workers and their sockets").

Two workers or more on TCP: a socket per worker (SO_REUSEPORT), none in the master.  One worker: the
master's one socket, shared, so the port keeps its queue while the worker restarts.  An address
already taken, even by a process that set SO_REUSEPORT itself (a stale copy of a service), stops
the start at once instead of being shared.
"""

from __future__ import annotations

import socket
import time

import pytest

from redfile_dev import testing
from redfile_dev.testing import ServiceProcess, tcp_socket_owners


def test_two_workers_listen_each_on_a_socket_of_their_own(redis_url, tmp_path):
    files = ServiceProcess("files", redis_url, tmp_path, WEB_CONCURRENCY="2", LOG_LEVEL="INFO")
    try:
        files.wait_ready()
        workers = set(files.worker_pids())
        assert len(workers) == 2 and tcp_socket_owners(files.port)["listen"] == workers
        log = files.log_path.read_text()
        assert "Each worker listens on its own socket (SO_REUSEPORT)" in log
        # gunicorn's own start-up line names the address, though the master holds no socket (issue 18)
        assert f"Listening at: http://127.0.0.1:{files.port} (" in log, log[:3000]
    finally:
        files.stop()


@pytest.mark.parametrize(
    "env", [{"WEB_CONCURRENCY": "1"}, {"WEB_CONCURRENCY": "2", "GUNICORN_REUSE_PORT": "0"}], ids=["one-worker", "switched-off"]
)
def test_one_worker_or_the_switch_off_keeps_the_master_s_one_socket(redis_url, tmp_path, env):
    files = ServiceProcess("files", redis_url, tmp_path, **env)
    try:
        files.wait_ready()
        listening = tcp_socket_owners(files.port)["listen"]
        assert files.proc.pid in listening and listening == {files.proc.pid, *files.worker_pids()}  # one socket, inherited
    finally:
        files.stop()


def test_a_port_already_taken_stops_the_start_instead_of_being_shared(redis_url, tmp_path, monkeypatch):
    stale = socket.socket()
    stale.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)  # as a stale copy of the service would have it
    stale.bind(("127.0.0.1", 0))
    stale.listen()
    monkeypatch.setattr(testing, "free_port", lambda: stale.getsockname()[1])  # the port the service is given
    files = ServiceProcess("files", redis_url, tmp_path, WEB_CONCURRENCY="2")
    try:
        deadline = time.monotonic() + 30
        while files.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert files.proc.returncode == 1
        assert "Connection in use" in files.log_path.read_text()
    finally:
        files.stop()
        stale.close()
