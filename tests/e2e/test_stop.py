"""Issue 17, item 5: Ctrl-C on a loaded ``make run`` stops every part, each worker by itself, every time.

The newcomer saw Ctrl-C take 22 s after heavy uploads, with "Worker (pid:…) was sent SIGKILL! Perhaps out of
memory?": a worker that could not exit was killed when its grace period ended.  Here the whole stack runs in
a process group of its own, under load (logins, uploads, listings through the gateway) with clients that
stall mid-request or say nothing at every part, and the group gets a terminal's SIGINT.  Each gunicorn
worker must log that its threads ended ("Worker stopped", which a SIGKILL prevents), no master may log a
SIGKILL, and the launcher must say "stopped" and exit 0.  The wait is a bound against a hang, not a timing.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .conftest import ADMIN_PASSWORD, System, login

BOOTED = re.compile(r"Booting worker with pid: (\d+)")
LOAD_SECONDS = 20  # the load stops by itself after this, whatever happens to the stack


def stalled_clients(port: int) -> list[socket.socket]:
    """An upload half-sent and a connection that says nothing, on one port."""
    half = socket.create_connection(("127.0.0.1", port), timeout=30)
    half.sendall(b"POST /files HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\nContent-Length: 10000000\r\n\r\n")
    half.sendall(os.urandom(65536))
    silent = socket.create_connection(("127.0.0.1", port), timeout=30)
    return [half, silent]


def load(base: str, stop: threading.Event) -> None:
    """What a busy user does, over and over, until ``stop`` or the time is up; errors once the stack stops are expected."""
    deadline = time.monotonic() + LOAD_SECONDS
    blob = os.urandom(2 * 1024 * 1024)
    with requests.Session() as session:
        while not stop.is_set() and time.monotonic() < deadline:
            try:
                api = login(base, "admin", ADMIN_PASSWORD)
                api.post("/files", files={"file": ("load.bin", blob)}, timeout=10)
                api.get("/files", timeout=10)
                api.get("/admin/users", timeout=10)
                session.get(f"{base}/healthz", timeout=10)
            except (requests.RequestException, AssertionError):
                time.sleep(0.05)


def test_ctrl_c_on_a_loaded_stack_stops_every_worker_by_itself(tmp_path):
    system = System(tmp_path, new_session=True)
    system.start()
    stop = threading.Event()
    socks: list[socket.socket] = []
    try:
        for port in (system.port, *system.ports.values()):
            socks += stalled_clients(port)
        with ThreadPoolExecutor(3) as pool:
            loaders = [pool.submit(load, system.base, stop) for _ in range(3)]
            time.sleep(2)  # the load is under way: requests in flight in every part
            code = system.interrupt()
            stop.set()
            for loader in loaders:
                loader.result(LOAD_SECONDS + 30)
    finally:
        stop.set()
        for s in socks:
            s.close()
        system.stop()
    logs = system.logs()
    workers = BOOTED.findall(logs)
    assert len(workers) >= 7, logs[-3000:]  # auth, files and admin two workers each, the gateway one
    assert "SIGKILL" not in logs, logs[-3000:]
    assert [pid for pid in workers if f"Worker stopped (pid: {pid})" not in logs] == [], logs[-3000:]
    assert code == 0 and system.output().rstrip().endswith("redfile: stopped"), system.output()[-2000:]
