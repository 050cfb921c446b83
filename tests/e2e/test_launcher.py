"""``make run`` as a newcomer meets it: only REDFILE_PORT matters, the banner comes after readiness and tells
the truth about the admin, and the terminal shows a status while the parts' logs go to files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import requests

from .conftest import System

BANNER = "Redfile is running"
# Ports a newcomer's machine may have taken (another Redfile started with them set, or anything else).
BUSY_PORTS = (8001, 8002, 8003, 9101, 9102, 9103)


class StandIn(ThreadingHTTPServer):
    """Something else on a port: answers 200 to every GET, as another Redfile's /readyz would, and counts the requests."""

    def __init__(self, port: int) -> None:
        self.hits = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.hits += 1
                self.send_response(200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.thread.join(5)


def run_launcher(system: System, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "redfile_dev.run"], env={**system.env(), **env}, capture_output=True, text=True, timeout=60, cwd=system.root
    )


@pytest.mark.parametrize("variable", ["REDFILE_PORT", "REDFILE_AUTH_PORT"])
def test_a_busy_port_is_named_with_its_holder_and_no_banner(tmp_path, variable):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        result = run_launcher(System(tmp_path), **{variable: str(port)})
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert f"port {port} ({variable}) on 127.0.0.1 is already in use by pid {os.getpid()} (" in output, output
    suggested = re.search(rf"pick another port: {variable}=(\d+) make run", output)
    assert suggested and int(suggested.group(1)) != port, output
    assert BANNER not in output
    assert not (tmp_path / "data" / "redis").exists(), "nothing starts when the port is taken"


@pytest.fixture(scope="module")
def crowded(tmp_path_factory) -> Iterator[tuple[System, list[StandIn]]]:
    """A system started by a user who sets only REDFILE_PORT, while something answers on 8001-8003 and 9101-9103."""
    stand_ins = []
    for port in BUSY_PORTS:
        with contextlib.suppress(OSError):  # taken already: busy either way
            stand_ins.append(StandIn(port))
    system = System(tmp_path_factory.mktemp("crowded"), explicit_ports=False)
    try:
        system.start()
        yield system, stand_ins
    finally:
        system.stop()
        for stand_in in stand_ins:
            stand_in.close()


def test_the_banner_comes_only_once_every_part_answers(crowded):
    system, _ = crowded
    # System.start returned as soon as the banner appeared: everything must answer now, from this system
    for service, port in system.ports.items():
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5).status_code == 200, service
    for service in system.ports:
        assert requests.get(f"{system.base}/{service}/openapi.json", timeout=5).status_code == 200, service
    output = system.output()
    banner_at = output.index(BANNER)
    for part in ("auth", "files", "admin", "gateway"):
        ready = re.search(rf"^redfile: {part} ready on ", output, re.M)
        assert ready and ready.start() < banner_at, f"{part} was not announced ready before the banner"


def test_busy_ports_8001_to_8003_do_not_matter(crowded):
    system, stand_ins = crowded
    assert not set(system.ports.values()) & set(BUSY_PORTS)
    assert not set(system.metrics_ports.values()) & set(BUSY_PORTS)
    assert all(stand_in.hits == 0 for stand_in in stand_ins), "the launcher asked something it did not start"
    token = requests.post(f"{system.base}/auth/login", json={"username": "admin", "password": system.admin_password}, timeout=30).json()[
        "access_token"
    ]
    assert requests.get(f"{system.base}/files", headers={"Authorization": f"Bearer {token}"}, timeout=10).status_code == 200
    metrics = requests.get(f"http://127.0.0.1:{system.metrics_ports['files']}/metrics", timeout=10)
    assert metrics.status_code == 200 and "redfile_" in metrics.text


def test_the_terminal_shows_a_status_and_the_logs_go_to_files(crowded):
    system, _ = crowded
    rid = "launcher-status-rid"
    requests.get(f"{system.base}/files", headers={"X-Request-ID": rid}, timeout=10)
    output = system.output()
    assert not [line for line in output.splitlines() if line.startswith("{")], "JSON log lines reached the terminal"
    assert "Booting worker" not in output
    assert f"logs:      {system.logs_dir}/ (auth.log, files.log, admin.log, gateway.log)" in output
    logs = {part: system.logs_dir / f"{part}.log" for part in ("auth", "files", "admin", "gateway")}
    for part, path in logs.items():
        assert "Booting worker" in path.read_text(), f"{part}'s log holds gunicorn's own lines"
    records = [json.loads(line) for line in logs["files"].read_text().splitlines() if line.startswith("{")]
    assert [r for r in records if r.get("request_id") == rid and r.get("event") == "request"], "the request line is in files.log"


def test_a_part_that_exits_is_reported_with_the_end_of_its_log(tmp_path):
    system = System(tmp_path)
    system.start()
    try:
        assert system.proc is not None
        children = [p for p in Path("/proc").iterdir() if p.name.isdigit() and parent_of(p) == system.proc.pid]
        files = [p for p in children if b"redfile_files:create_app" in (p / "cmdline").read_bytes()]
        assert len(files) == 1, "one files master under the launcher"
        os.kill(int(files[0].name), signal.SIGTERM)
        assert system.proc.wait(60) == 1
    finally:
        system.stop()
    output = system.output()
    assert f"redfile: files exited with 0; the end of {system.logs_dir / 'files.log'}:\n" in output
    assert "  | " in output and "Shutting down: Master" in output, "the end of the log is on the terminal"
    assert "stopping everything" in output


def parent_of(proc: Path) -> int | None:
    try:
        stat = (proc / "stat").read_text()
    except OSError:
        return None
    return int(stat.rsplit(")", 1)[1].split()[1])


def test_production_keeps_one_json_line_per_event_on_the_terminal(tmp_path):
    system = System(tmp_path, env={"REDFILE_ENV": "production"})
    system.start()
    try:
        requests.get(f"{system.base}/files", headers={"X-Request-ID": "launcher-production-rid"}, timeout=10)
        deadline = time.monotonic() + 10
        while "launcher-production-rid" not in system.output() and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        system.stop()
    output = system.output()
    records = [json.loads(line) for line in output.splitlines() if line.startswith("{")]
    assert [r for r in records if r.get("request_id") == "launcher-production-rid" and r.get("event") == "request"]
    assert {r.get("service") for r in records} >= {"auth", "files", "admin", "gateway"}
    assert "logs:" not in output and not system.logs_dir.exists()


def banner(system: System) -> str:
    output = system.output()
    return output[output.index(BANNER) :]


def login_status(system: System, password: str) -> int:
    return requests.post(f"{system.base}/auth/login", json={"username": "admin", "password": password}, timeout=30).status_code


def test_a_restart_banner_does_not_claim_a_password_it_did_not_set(tmp_path: Path):
    first = System(tmp_path, admin_password="first-admin-password-1")
    first.start()
    try:
        assert "admin:     admin / the ADMIN_PASSWORD you set (created now)" in banner(first)
    finally:
        first.stop()
    second = System(tmp_path, admin_password="second-admin-password-2")
    second.start()
    try:
        shown = banner(second)
        assert "admin already exists, with the password it had: ADMIN_PASSWORD only creates the admin" in shown
        assert "PATCH /admin/users/admin" in shown and f"remove {tmp_path / 'data'}/ to start over" in shown
        assert "the ADMIN_PASSWORD you set" not in shown and "second-admin-password-2" not in shown
        assert login_status(second, "second-admin-password-2") == 401
        assert login_status(second, "first-admin-password-1") == 200
    finally:
        second.stop()


def test_a_generated_admin_password_is_shown_while_it_works(tmp_path: Path):
    first = System(tmp_path, admin_password="")
    first.start()
    try:
        generated = json.loads((tmp_path / "data" / "dev-secrets.json").read_text())["ADMIN_PASSWORD"]
        assert f"admin:     admin / {generated}  (generated, kept in {tmp_path / 'data' / 'dev-secrets.json'})" in banner(first)
        assert login_status(first, generated) == 200
    finally:
        first.stop()
    second = System(tmp_path, admin_password="")
    second.start()
    try:
        assert f"admin:     admin / {generated}  (generated, kept in {tmp_path / 'data' / 'dev-secrets.json'})" in banner(second)
    finally:
        second.stop()
