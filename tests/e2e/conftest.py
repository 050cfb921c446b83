"""End to end: the whole system as `make run` starts it — real gunicorn processes
behind the development gateway, and a private real Redis — driven only over HTTP."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from redfile_dev.redis_server import free_port

ADMIN_PASSWORD = "e2e-admin-password-0123"
STARTUP_TIMEOUT = 120
READY_LINE = re.compile(r"^redfile: (auth|files|admin) ready on 127\.0\.0\.1:(\d+) \(metrics on :(\d+)\)$", re.MULTILINE)


class System:
    """The launcher of ``make run`` in a folder of its own: its own output goes to ``system.log``, the
    services' and the gateway's to ``data/logs/<part>.log`` (the launcher puts them there in development).

    ``env`` adds to (or overrides) the environment the launcher and the services see.  With
    ``explicit_ports`` the services' and metrics ports are chosen here and passed on; without, the
    launcher picks them as it does for a user.  With ``new_session`` the launcher and everything it starts form a
    process group of their own, which ``interrupt()`` signals as a terminal's Ctrl-C does.
    """

    def __init__(
        self,
        root: Path,
        *,
        admin_password: str = ADMIN_PASSWORD,
        env: dict[str, str] | None = None,
        explicit_ports: bool = True,
        new_session: bool = False,
    ) -> None:
        self.root = root
        self.admin_password = admin_password
        self.extra_env = dict(env or {})
        self.port = free_port()
        self.explicit_ports = explicit_ports
        self.new_session = new_session
        self.ports = {s: free_port() for s in ("auth", "files", "admin")}
        self.metrics_ports = {s: free_port() for s in ("auth", "files", "admin")}
        self.base = f"http://127.0.0.1:{self.port}"
        self.log_path = root / "system.log"
        self.logs_dir = root / "data" / "logs"
        self.proc: subprocess.Popen | None = None

    def env(self) -> dict:
        env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "ADMIN_PASSWORD", "ADMIN_USERS")}
        env.update(
            REDFILE_DATA_DIR=str(self.root / "data"),
            REDFILE_PORT=str(self.port),
            ADMIN_USERS="admin",
            ADMIN_PASSWORD=self.admin_password,
            REDFILE_ENV="development",
            LOG_LEVEL="INFO",
            WEB_CONCURRENCY="2",
            # keep logins quick in tests; production defaults are in the README
            ARGON2_MEMORY_KIB="8192",
            ARGON2_TIME_COST="1",
        )
        for s in self.ports if self.explicit_ports else ():
            env[f"REDFILE_{s.upper()}_PORT"] = str(self.ports[s])
            env[f"REDFILE_{s.upper()}_METRICS_PORT"] = str(self.metrics_ports[s])
        env.update(self.extra_env)
        return env

    def start(self) -> None:
        with open(self.log_path, "wb") as log:  # the launcher and its children write to their own copies of the descriptor
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "redfile_dev.run"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=self.new_session,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"launcher exited early:\n{self.log_path.read_text()[-4000:]}")
            if "Redfile is running" in self.log_path.read_text(errors="replace"):
                for service, port, metrics in READY_LINE.findall(self.output()):
                    self.ports[service], self.metrics_ports[service] = int(port), int(metrics)
                return
            time.sleep(0.2)
        raise RuntimeError(f"system not up after {STARTUP_TIMEOUT}s:\n{self.log_path.read_text()[-4000:]}")

    def stop(self) -> int | None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode if self.proc else None

    def interrupt(self, timeout: float = 60) -> int:
        """Ctrl-C: SIGINT to the launcher and every process it started (``new_session`` only); its exit code."""
        assert self.proc and self.new_session
        os.killpg(self.proc.pid, signal.SIGINT)
        return self.proc.wait(timeout)

    def output(self) -> str:
        """What the launcher printed: what a user sees on the terminal."""
        return self.log_path.read_text(errors="replace")

    def logs(self) -> str:
        """Everything every process wrote: the launcher's output, then each part's log file."""
        parts = [self.output()]
        parts += [path.read_text(errors="replace") for path in sorted(self.logs_dir.glob("*.log"))]
        return "\n".join(parts)


@pytest.fixture(scope="session")
def system(tmp_path_factory):
    sys_ = System(tmp_path_factory.mktemp("system"))
    sys_.start()
    yield sys_
    sys_.stop()


class Api:
    """A tiny HTTP client bound to the gateway, with an optional bearer token."""

    def __init__(self, base: str, token: str | None = None) -> None:
        self.base = base
        self.token = token
        self.session = requests.Session()

    def headers(self, extra=None):
        h = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        h.update(extra or {})
        return h

    def request(self, method, path, **kw):
        kw["headers"] = self.headers(kw.get("headers"))
        kw.setdefault("timeout", 30)
        return self.session.request(method, self.base + path, **kw)

    def get(self, path, **kw):
        return self.request("GET", path, **kw)

    def post(self, path, **kw):
        return self.request("POST", path, **kw)

    def patch(self, path, **kw):
        return self.request("PATCH", path, **kw)

    def delete(self, path, **kw):
        return self.request("DELETE", path, **kw)


def docs_load_through(base: str, service: str) -> dict[str, str]:
    """GET ``/<service>/docs`` at ``base`` and each file the page loads (script src, link href), all from ``base``.

    Returns each file's path with its content type; every answer is asserted 200.
    """
    page = requests.get(f"{base}/{service}/docs", timeout=10)
    assert page.status_code == 200 and page.headers["Content-Type"].startswith("text/html"), page.status_code
    refs = re.findall(r'<(?:script|link)\b[^>]*?(?:src|href)="([^"]+)"', page.text)
    assert refs and all(ref.startswith(f"/{service}/") for ref in refs), refs
    types = {}
    for ref in refs:
        resp = requests.get(base + ref, timeout=10)
        assert resp.status_code == 200, f"{ref}: {resp.status_code}"
        types[ref] = resp.headers["Content-Type"].split(";")[0]
    return types


def login(base: str, username: str, password: str) -> Api:
    resp = requests.post(f"{base}/auth/login", json={"username": username, "password": password}, timeout=30)
    assert resp.status_code == 200, resp.text
    return Api(base, resp.json()["access_token"])


@pytest.fixture(scope="session")
def admin(system) -> Api:
    return login(system.base, "admin", ADMIN_PASSWORD)


@pytest.fixture
def make_user(system, admin, unique):
    """Create a fresh user through the admin API and return a logged-in client."""
    counter = iter(range(1000))

    def make(role: str = "user") -> tuple[str, str, Api]:
        name = f"u{unique}{next(counter)}"
        password = f"pw-{unique}-secret"
        resp = admin.post("/admin/users", json={"username": name, "password": password, "role": role})
        assert resp.status_code == 201, resp.text
        return name, password, login(system.base, name, password)

    return make


@pytest.fixture
def login_as(system):
    def do(username: str, password: str) -> Api:
        return login(system.base, username, password)

    return do


@pytest.fixture(scope="session")
def admin_password() -> str:
    return ADMIN_PASSWORD
