"""``make run``: the whole of Redfile on one machine.

Starts Redis (``REDIS_URL`` when set, else a private server whose data is
kept in ``data/redis``), the three services under gunicorn, and the
development gateway on http://127.0.0.1:$REDFILE_PORT (default 8080); prints
the URL and the bootstrap admin's credentials; stops everything on
Ctrl-C/SIGTERM, or when any part dies.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from .redis_server import RedisProcess

SERVICES = ("auth", "files", "admin")
DEFAULT_PORTS = {"auth": 8001, "files": 8002, "admin": 8003}
DEFAULT_METRICS_PORTS = {"auth": 9101, "files": 9102, "admin": 9103}


def say(msg: str) -> None:
    print(f"redfile: {msg}", file=sys.stderr, flush=True)


def load_dev_secrets(data_dir: Path) -> dict:
    """Random secrets made once and kept in data/dev-secrets.json (mode 0600), so tokens survive restarts."""
    path = data_dir / "dev-secrets.json"
    if path.exists():
        return json.loads(path.read_text())
    values = {
        "APP_SECRET_KEY": secrets.token_urlsafe(48),
        "USER_TOKEN_KEYS": f"u{secrets.token_hex(3)}:{secrets.token_urlsafe(48)}",
        "SERVICE_TOKEN_KEYS": f"s{secrets.token_hex(3)}:{secrets.token_urlsafe(48)}",
        "ADMIN_PASSWORD": secrets.token_urlsafe(12),
    }
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump(values, fh, indent=2)
    return values


def _port(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


class Launcher:
    def __init__(self) -> None:
        self.root = Path(os.environ.get("REDFILE_DATA_DIR", "data")).resolve()
        self.host = os.environ.get("REDFILE_HOST", "127.0.0.1")
        self.port = _port("REDFILE_PORT", 8080)
        self.procs: dict[str, subprocess.Popen] = {}
        self.redis: RedisProcess | None = None
        self.stopping = False

    def env_for(self, base: dict) -> dict:
        env = dict(os.environ)
        env.update(base)
        return env

    def start(self) -> None:
        dev = load_dev_secrets(self.root)
        shared = {k: os.environ.get(k) or v for k, v in dev.items()}
        shared["REDFILE_ENV"] = os.environ.get("REDFILE_ENV", "development")
        admins = os.environ.get("ADMIN_USERS", "admin")
        shared["ADMIN_USERS"] = admins

        if os.environ.get("REDIS_URL"):
            shared["REDIS_URL"] = os.environ["REDIS_URL"]
            say("using Redis at REDIS_URL")
        else:
            self.redis = RedisProcess(self.root / "redis", port=_port("REDFILE_REDIS_PORT", 0) or None).start()
            shared["REDIS_URL"] = self.redis.url
            say(f"private Redis on 127.0.0.1:{self.redis.port}, data in {self.redis.data_dir}")

        ports = {s: _port(f"REDFILE_{s.upper()}_PORT", DEFAULT_PORTS[s]) for s in SERVICES}
        for s in SERVICES:
            shared[f"{s.upper()}_URL"] = f"http://127.0.0.1:{ports[s]}"

        for s in SERVICES:
            mp_dir = self.root / "run" / "metrics" / s
            env = self.env_for(
                {
                    **shared,
                    "SERVICE_NAME": s,
                    "TRUSTED_PROXY_HOPS": "1",
                    "BIND": f"127.0.0.1:{ports[s]}",
                    "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
                    "PROMETHEUS_MULTIPROC_DIR": str(mp_dir),
                    "METRICS_PORT": str(_port(f"REDFILE_{s.upper()}_METRICS_PORT", DEFAULT_METRICS_PORTS[s])),
                }
            )
            self.spawn(s, ["-c", "python:redfile_common.gunicorn_conf", f"redfile_{s}:create_app()"], env)
        for s in SERVICES:
            self.wait_ready(s, f"http://127.0.0.1:{ports[s]}/readyz")

        gw_env = self.env_for(
            {**shared, "SERVICE_NAME": "gateway", "BIND": f"{self.host}:{self.port}", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "16"}
        )
        gw_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gw_env.pop("METRICS_PORT", None)
        self.spawn("gateway", ["-c", "python:redfile_common.gunicorn_conf", "redfile_dev.gateway:create_gateway()"], gw_env)
        self.wait_ready("gateway", f"http://127.0.0.1:{self.port}/auth/openapi.json")

        first_admin = admins.split(",")[0].strip() or "admin"
        if os.environ.get("ADMIN_PASSWORD"):
            shown = "<the ADMIN_PASSWORD you set>"  # never echo a password the operator chose
        elif self.password_works(first_admin, shared["ADMIN_PASSWORD"]):
            shown = f"{shared['ADMIN_PASSWORD']}  (generated, kept in {self.root / 'dev-secrets.json'})"
        else:
            shown = "<unchanged: the account existed before; its password is not the generated one>"
        print(
            f"\nRedfile is running at http://{self.host}:{self.port}\n"
            f"  API docs:  http://{self.host}:{self.port}/auth/docs  /files/docs  /admin/docs\n"
            f"  admin:     {first_admin} / {shown}\n"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )

    def password_works(self, username: str, password: str) -> bool:
        """Bootstrap never resets an existing admin's password, so check before printing one."""
        try:
            resp = requests.post(f"http://127.0.0.1:{self.port}/auth/login", json={"username": username, "password": password}, timeout=10)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def spawn(self, name: str, gunicorn_args: list[str], env: dict) -> None:
        self.procs[name] = subprocess.Popen([sys.executable, "-m", "gunicorn", *gunicorn_args], env=env, stdin=subprocess.DEVNULL)

    def wait_ready(self, name: str, url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.stopping:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with {proc.returncode} while starting")
            try:
                if requests.get(url, timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.2)
        if self.stopping:
            raise RuntimeError("interrupted while starting")
        raise RuntimeError(f"{name} not ready after {timeout}s")

    def watch(self) -> int:
        while not self.stopping:
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    say(f"{name} exited with {proc.returncode}; stopping everything")
                    return 1
            if self.redis and self.redis.proc and self.redis.proc.poll() is not None:
                say("Redis exited; stopping everything")
                return 1
            time.sleep(0.5)
        return 0

    def stop(self) -> None:
        self.stopping = True
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + 30
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
        if self.redis:
            self.redis.stop()


def main() -> int:
    launcher = Launcher()

    def _signal(signum, frame):
        launcher.stopping = True

    signal.signal(signal.SIGINT, _signal)
    signal.signal(signal.SIGTERM, _signal)
    code = 0
    try:
        launcher.start()
        code = launcher.watch()
    except Exception as exc:
        say(f"failed to start: {exc}")
        code = 1
    finally:
        launcher.stop()
        say("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
