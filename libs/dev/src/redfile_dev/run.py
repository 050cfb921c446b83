"""``make run``: the whole of Redfile on one machine.

Starts Redis (``REDIS_URL`` when set, else a private server whose data is
kept in ``data/redis``, or with ``REDFILE_REDIS_MODE=cluster`` / ``sentinel`` a
private cluster or Sentinel set-up: ``run_redis``), the three services under gunicorn on free loopback
ports, and the development gateway on http://127.0.0.1:$REDFILE_PORT (default
8080).  The banner (URL, admin, where the logs are) comes only once every
service's ``/readyz`` and the gateway answer.  In development the processes'
output goes to ``data/logs/<part>.log`` and the terminal shows a short status;
with ``REDFILE_ENV=production`` it stays on the terminal, one JSON line per
event.  Everything stops on Ctrl-C/SIGTERM, or when any part dies.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import IO

import redis
import requests

from .ports import free_ports, port_holder, port_is_free
from .run_redis import PrivateRedis, client_for, private_redis_mode, start_private_redis

SERVICES = ("auth", "files", "admin")
PARTS = (*SERVICES, "gateway")
LOG_TAIL_LINES = 20


def say(msg: str) -> None:
    print(f"redfile: {msg}", file=sys.stderr, flush=True)


class PortInUse(RuntimeError):
    pass


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


def _env_port(name: str) -> int | None:
    value = os.environ.get(name, "").strip()
    return int(value) if value else None


def _shown(path: Path) -> str:
    """``path`` relative to the current folder when it is inside it (what the user typed ``make run`` in)."""
    with contextlib.suppress(ValueError):
        return str(path.relative_to(Path.cwd()))
    return str(path)


def admin_exists(redis_env: dict[str, str], username: str) -> bool:
    """Whether auth's bootstrap will find ``username`` already stored (and so leave its password alone).

    When Redis cannot say (a REDIS_URL whose user may not read auth's keys), it counts as existing:
    the banner then claims no password it cannot vouch for.
    """
    from redfile_auth.keys import USER, user_key
    from redfile_auth.validation import normalise_username

    try:
        client = client_for(redis_env, socket_timeout=5, socket_connect_timeout=5)
    except (redis.RedisError, KeyError, ValueError) as exc:
        say(f"could not tell whether admin {username!r} exists ({type(exc).__name__})")
        return True
    try:
        name = normalise_username(username)
        # its key, or the one of a release before keys carried hash tags (auth renames it when it starts)
        return bool(client.exists(user_key(name))) or bool(client.exists(USER + name))
    except redis.RedisError as exc:
        say(f"could not tell whether admin {username!r} exists ({type(exc).__name__})")
        return True
    finally:
        client.close()


class Launcher:
    def __init__(self) -> None:
        self.root = Path(os.environ.get("REDFILE_DATA_DIR", "data")).resolve()
        self.logs_dir = self.root / "logs"
        self.host = os.environ.get("REDFILE_HOST", "127.0.0.1")
        self.port = _env_port("REDFILE_PORT") or 8080
        self.development = os.environ.get("REDFILE_ENV", "development") == "development"
        self.procs: dict[str, subprocess.Popen] = {}
        self.log_files: dict[str, IO[bytes]] = {}
        self.log_offsets: dict[str, int] = {}
        self.redis: PrivateRedis | None = None
        self.redis_exits_told: set[int] = set()
        self.stopping = False

    def env_for(self, base: dict) -> dict:
        env = dict(os.environ)
        env.update(base)
        return env

    def choose_ports(self) -> tuple[dict[str, int], dict[str, int]]:
        """The services' and metrics ports: the ones set in the environment, else free ones; a taken one stops the start."""
        wanted = {"REDFILE_PORT": (self.host, self.port)}
        for s in SERVICES:
            for var in (f"REDFILE_{s.upper()}_PORT", f"REDFILE_{s.upper()}_METRICS_PORT"):
                port = _env_port(var)
                if port:
                    wanted[var] = ("127.0.0.1", port)
        for var, (host, port) in wanted.items():
            if not port_is_free(host, port):
                holder = port_holder(port)
                raise PortInUse(
                    f"port {port} ({var}) on {host} is already in use"
                    + (f" by {holder}" if holder else "")
                    + f".\n  Stop that, or pick another port: {var}={self.suggest_port(port)} make run"
                )
        taken = {port for _, port in wanted.values()}
        spare = iter(free_ports(2 * len(SERVICES), taken=taken))
        ports = {s: _env_port(f"REDFILE_{s.upper()}_PORT") or next(spare) for s in SERVICES}
        metrics = {s: _env_port(f"REDFILE_{s.upper()}_METRICS_PORT") or next(spare) for s in SERVICES}
        return ports, metrics

    def suggest_port(self, busy: int) -> int:
        for candidate in range(busy + 10, busy + 30):
            if candidate < 65536 and port_is_free(self.host, candidate):
                return candidate
        return free_ports(1, self.host)[0]

    def start(self) -> None:
        ports, metrics_ports = self.choose_ports()
        dev = load_dev_secrets(self.root)
        shared = {k: os.environ.get(k) or v for k, v in dev.items()}
        shared["REDFILE_ENV"] = os.environ.get("REDFILE_ENV", "development")
        admins = os.environ.get("ADMIN_USERS", "admin")
        shared["ADMIN_USERS"] = admins
        if self.development:
            self.logs_dir.mkdir(parents=True, exist_ok=True)

        if os.environ.get("REDIS_URL"):
            shared["REDIS_URL"] = os.environ["REDIS_URL"]
            say(f"using Redis at REDIS_URL (REDIS_MODE={os.environ.get('REDIS_MODE') or 'standalone'})")
            redis_env = {k: v for k, v in os.environ.items() if k.startswith("REDIS_")}
        else:
            self.redis = start_private_redis(private_redis_mode(), self.root, _shown, _env_port("REDFILE_REDIS_PORT"))
            shared.update(self.redis.env)
            redis_env = self.redis.env
            say(self.redis.summary)

        first_admin = admins.split(",")[0].strip() or "admin"
        admin_existed = admin_exists(redis_env, first_admin)

        for s in SERVICES:
            shared[f"{s.upper()}_URL"] = f"http://127.0.0.1:{ports[s]}"
        # share links and QR codes point at the gateway, where users are (not at the files service's own port)
        shared["PUBLIC_URL"] = os.environ.get("PUBLIC_URL") or f"http://{self.host}:{self.port}"

        for s in SERVICES:
            env = self.env_for(
                {
                    **shared,
                    "SERVICE_NAME": s,
                    "TRUSTED_PROXY_HOPS": "1",
                    "BIND": f"127.0.0.1:{ports[s]}",
                    "WEB_CONCURRENCY": os.environ.get("WEB_CONCURRENCY", "2"),
                    "PROMETHEUS_MULTIPROC_DIR": str(self.root / "run" / "metrics" / s),
                    "METRICS_PORT": str(metrics_ports[s]),
                }
            )
            self.spawn(s, ["-c", "python:redfile_common.gunicorn_conf", f"redfile_{s}:create_app()"], env)
        for s in SERVICES:
            self.wait_ready(s, [f"http://127.0.0.1:{ports[s]}/readyz"])
            say(f"{s} ready on 127.0.0.1:{ports[s]} (metrics on :{metrics_ports[s]})")

        # Threads enough that the gateway never queues a request behind ones a service holds (an Ingress
        # does not): a service answers each within its budget (docs/operations.md, "When Redis hangs").
        gw_env = self.env_for(
            {**shared, "SERVICE_NAME": "gateway", "BIND": f"{self.host}:{self.port}", "WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "64"}
        )
        gw_env.pop("PROMETHEUS_MULTIPROC_DIR", None)
        gw_env.pop("METRICS_PORT", None)
        self.spawn("gateway", ["-c", "python:redfile_common.gunicorn_conf", "redfile_dev.gateway:create_gateway()"], gw_env)
        # The gateway has no endpoint of its own: it is ready when it routes to every service.
        self.wait_ready("gateway", [f"http://127.0.0.1:{self.port}/{s}/openapi.json" for s in SERVICES])
        say(f"gateway ready on {self.host}:{self.port}")
        for name, proc in self.procs.items():  # a ready answer from a process that then died is no readiness
            if proc.poll() is not None:
                raise RuntimeError(self.exit_report(name, proc.returncode))
        self.banner(first_admin, admin_existed, shared["ADMIN_PASSWORD"])

    def banner(self, first_admin: str, admin_existed: bool, admin_password: str) -> None:
        chosen = bool(os.environ.get("ADMIN_PASSWORD"))
        secrets_file = _shown(self.root / "dev-secrets.json")
        if not admin_existed:
            if chosen:
                admin = f"{first_admin} / the ADMIN_PASSWORD you set (created now)"  # never echo a password the operator chose
            else:
                admin = f"{first_admin} / {admin_password}  (generated, kept in {secrets_file})"
        elif not chosen and self.password_works(first_admin, admin_password):
            admin = f"{first_admin} / {admin_password}  (generated, kept in {secrets_file})"
        else:
            reset = f"remove {_shown(self.root)}/ to start over (every user and file goes)"
            if os.environ.get("REDIS_URL"):
                reset = "empty the Redis at REDIS_URL to start over (every user and file goes)"
            admin = (
                f"{first_admin} already exists, with the password it had: ADMIN_PASSWORD only creates the admin.\n"
                f"             Forgot it? Another admin can set one (PATCH /admin/users/{first_admin} with"
                f' {{"password": "..."}}),\n'
                f"             or stop and {reset}."
            )
        logs = f"  logs:      {_shown(self.logs_dir)}/ ({', '.join(p + '.log' for p in PARTS)})\n" if self.development else ""
        print(
            f"\nRedfile is running at http://{self.host}:{self.port}\n"
            f"  API docs:  http://{self.host}:{self.port}/auth/docs  /files/docs  /admin/docs\n"
            f"  admin:     {admin}\n"
            f"{logs}"
            f"  Ctrl-C stops everything.\n",
            flush=True,
        )

    def password_works(self, username: str, password: str) -> bool:
        try:
            resp = requests.post(f"http://127.0.0.1:{self.port}/auth/login", json={"username": username, "password": password}, timeout=10)
        except requests.RequestException:
            return False
        return resp.status_code == 200

    def spawn(self, name: str, gunicorn_args: list[str], env: dict) -> None:
        output: IO[bytes] | None = None
        if self.development:
            output = open(self.logs_dir / f"{name}.log", "wb")  # noqa: SIM115 -- open until stop() closes it
            self.log_files[name] = output
            self.log_offsets[name] = 0
        self.procs[name] = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", *gunicorn_args], env=env, stdin=subprocess.DEVNULL, stdout=output, stderr=subprocess.STDOUT
        )

    def exit_report(self, name: str, code: int | None) -> str:
        """What the terminal shows when a part exits: its code, and the end of its log when it has one."""
        message = f"{name} exited with {code}"
        path = self.logs_dir / f"{name}.log"
        if name in self.log_files and path.exists():
            tail = path.read_text(errors="replace").splitlines()[-LOG_TAIL_LINES:]
            message += f"; the end of {_shown(path)}:\n" + "\n".join(f"  | {line}" for line in tail)
        return message

    def wait_ready(self, name: str, urls: list[str], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        pending = list(urls)
        while time.monotonic() < deadline and not self.stopping:
            proc = self.procs[name]
            if proc.poll() is not None:
                raise RuntimeError(self.exit_report(name, proc.returncode))
            with contextlib.suppress(requests.RequestException):
                while pending and requests.get(pending[0], timeout=2).status_code == 200:
                    pending.pop(0)
            if not pending:
                return
            time.sleep(0.2)
        if self.stopping:
            raise RuntimeError("interrupted while starting")
        raise RuntimeError(
            f"{name} not ready after {timeout:.0f}s" + (f"; see {_shown(self.logs_dir / f'{name}.log')}" if self.development else "")
        )

    def report_errors(self) -> None:
        """Echo each new error line of the parts' logs as one short line, so trouble shows where the user looks."""
        for name, fh in self.log_files.items():
            path = Path(fh.name)
            with contextlib.suppress(OSError), open(path, "rb") as reader:
                reader.seek(self.log_offsets[name])
                chunk = reader.read(1 << 20)
                complete = chunk[: chunk.rfind(b"\n") + 1]
                self.log_offsets[name] += len(complete)
            for line in complete.splitlines():
                with contextlib.suppress(ValueError):
                    record = json.loads(line)
                    if isinstance(record, dict) and record.get("level") in ("error", "critical"):
                        say(f"{name} {record['level']}: {record.get('event', '')} (see {_shown(path)})")

    def watch(self) -> int:
        while not self.stopping:
            self.report_errors()
            for name, proc in self.procs.items():
                if proc.poll() is not None:
                    say(f"{self.exit_report(name, proc.returncode)}\nredfile: stopping everything")
                    return 1
            if self.redis and self.redis_exited():
                return 1
            time.sleep(0.5)
        return 0

    def redis_exited(self) -> bool:
        """Whether the private Redis is gone: a standalone server that exited stops everything; a cluster or
        Sentinel node that exited is told once (the topology fails over without it)."""
        assert self.redis is not None
        for node in self.redis.processes:
            if node.proc is None or node.proc.poll() is None or node.port in self.redis_exits_told:
                continue
            if len(self.redis.processes) == 1:
                say(f"Redis exited; see {_shown(node.log_path)}; stopping everything")
                return True
            self.redis_exits_told.add(node.port)
            say(f"Redis node on port {node.port} exited; see {_shown(node.log_path)}")
        return False

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
            self.redis.server.stop()
        for fh in self.log_files.values():
            fh.close()


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
    except PortInUse as exc:
        say(str(exc))
        return 1
    except Exception as exc:
        say(f"failed to start: {exc}")
        code = 1
    finally:
        launcher.stop()
    say("stopped")
    return code


if __name__ == "__main__":
    sys.exit(main())
