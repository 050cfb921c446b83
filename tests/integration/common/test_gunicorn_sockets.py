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

pytestmark = pytest.mark.timing  # asserts a time bound of issue 18: run alone (make test's second phase)


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


def test_healthz_on_the_main_port_never_waits_behind_threads_held_by_a_hung_redis(tmp_path):
    """Issue 18: the one request thread waits on a frozen Redis; ``/healthz`` on the same port still answers at once."""
    import os
    import signal
    from concurrent.futures import ThreadPoolExecutor

    import requests

    from redfile_dev.redis_server import RedisProcess
    from redfile_dev.testing import auth_header, make_settings, user_token
    from redfile_files.settings import FilesSettings

    server = RedisProcess(tmp_path / "redis", appendonly=False).start()
    assert server.proc is not None
    files = ServiceProcess("files", server.url, tmp_path, WEB_CONCURRENCY="1", GUNICORN_THREADS="1", REQUEST_BUDGET="3")
    try:
        files.wait_ready()
        import redis

        r = redis.Redis.from_url(server.url)
        alice = auth_header(user_token(make_settings(FilesSettings, server.url), r, "alice"))
        r.close()
        os.kill(server.proc.pid, signal.SIGSTOP)
        try:
            with ThreadPoolExecutor(2) as pool:
                held = pool.submit(requests.get, f"{files.url}/files", headers=alice, timeout=30)  # holds the only thread
                time.sleep(0.5)
                worst = 0.0
                for _ in range(5):
                    started = time.monotonic()
                    assert requests.get(f"{files.url}/healthz", timeout=10).status_code == 200
                    worst = max(worst, time.monotonic() - started)
                    time.sleep(0.1)
                assert held.result(30).status_code == 503
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        assert worst < 0.5, worst
    finally:
        files.stop()
        server.kill()
