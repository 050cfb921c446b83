"""The processes a benchmark run measures: a private Redis, gunicorn apps, the seed stand-in; their memory.

Everything listens on 127.0.0.1 only and is stopped by ``Processes.close``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import redis
import requests

from redfile_dev.cluster import ClusterProcess
from redfile_dev.redis_server import RedisProcess, free_port
from redfile_dev.testing import test_env

HERE = Path(__file__).resolve().parent
GUNICORN_CONF = "python:redfile_common.gunicorn_conf"


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU time the processes have used so far (``/proc/<pid>/stat``)."""
    total = 0
    for pid in pids:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        total += int(fields[11]) + int(fields[12])  # utime, stime (fields 14 and 15 of stat)
    return total / os.sysconf("SC_CLK_TCK")


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def reset_peak(pid: int) -> bool:
    """Reset the kernel's peak-RSS mark (VmHWM) of ``pid``: writing 5 to clear_refs (Linux >= 4.0)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def children(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


class App:
    """One HTTP server process (a gunicorn master and its workers, or a single process)."""

    def __init__(self, name: str, proc: subprocess.Popen, port: int, log: Path, *, gunicorn: bool, workers: int = 1) -> None:
        self.name = name
        self.expect_workers = workers
        self.proc = proc
        self.port = port
        self.log = log
        self.gunicorn = gunicorn

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def workers(self) -> list[int]:
        return children(self.proc.pid) if self.gunicorn else [self.proc.pid]

    def wait_ready(self, path: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                # every worker must be up, not only the first to answer
                if requests.get(self.base + path, timeout=2).status_code < 500 and (
                    not self.gunicorn or len(self.workers()) >= self.expect_workers
                ):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} not ready after {timeout:.0f}s:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)


class Processes:
    """Starts and stops everything of one run; ``tmp`` holds their logs and Redis's files."""

    def __init__(self, tmp: Path, *, workers: int, threads: int, aof: bool = False) -> None:
        self.tmp = tmp
        self.workers = workers
        self.threads = threads
        self.aof = aof
        self.redis = RedisProcess(tmp / "redis", appendonly=aof).start()
        self.clusters: list[ClusterProcess] = []
        self.replicas: list[RedisProcess] = []
        self.apps: list[App] = []

    @property
    def redis_url(self) -> str:
        return self.redis.url

    def env(self, service: str, port: int, **extra: str) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_", "METRICS_"))}
        mp_dir = self.tmp / "metrics" / f"{service}-{port}"
        env.update(test_env(self.redis.url))
        env.update(
            SERVICE_NAME=service,
            BIND=f"127.0.0.1:{port}",
            WEB_CONCURRENCY=str(self.workers),
            GUNICORN_THREADS=str(self.threads),
            LOG_LEVEL="INFO",
            PROMETHEUS_MULTIPROC_DIR=str(mp_dir),
        )
        env.update(extra)
        return env

    def gunicorn(self, name: str, app: str, *, service: str, ready: str, pythonpath: str | None = None, **extra: str) -> App:
        """``app`` under the shared gunicorn config, as ``make run`` starts a service (JSON logs to a file, metrics on)."""
        port = free_port()
        log = self.tmp / f"{name}.log"
        args = [sys.executable, "-m", "gunicorn", "-c", GUNICORN_CONF]
        if pythonpath:
            args += ["--pythonpath", pythonpath]
        with open(log, "wb") as out:  # the child keeps its own copy of the descriptor
            proc = subprocess.Popen(
                [*args, app],
                env=self.env(service, port, **extra),
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = App(name, proc, port, log, gunicorn=True, workers=self.workers)
        self.apps.append(started)
        started.wait_ready(ready)
        return started

    def single(self, name: str, argv: list[str], *, ready: str, port: int) -> App:
        """One plain process (the seed stand-in: a single Flask process)."""
        log = self.tmp / f"{name}.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [sys.executable, *argv],
                env={**os.environ},
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        started = App(name, proc, port, log, gunicorn=False)
        self.apps.append(started)
        started.wait_ready(ready)
        return started

    def cluster(self, *, primaries: int, replicas: int) -> ClusterProcess:
        """A private Redis Cluster (same binary, same AOF setting as the standalone Redis), stopped by :meth:`close`."""
        cluster = ClusterProcess(self.tmp / f"cluster-{len(self.clusters)}", primaries=primaries, replicas=replicas, appendonly=self.aof)
        self.clusters.append(cluster.start())
        return cluster

    def standalone_replicas(self, count: int) -> list[RedisProcess]:
        """``count`` replicas of the standalone Redis (same binary and AOF setting), each in sync with it on
        return: the standalone side of a comparison with a cluster whose primaries have as many.  Stopped by
        :meth:`close`, or earlier by their caller."""
        started = []
        for n in range(count):
            replica = RedisProcess(
                self.tmp / f"redis-replica-{n}", appendonly=self.aof, extra_args=["--replicaof", "127.0.0.1", str(self.redis.port)]
            )
            started.append(replica.start())
            self.replicas.append(replica)
        client = redis.Redis(port=self.redis.port, socket_timeout=10)
        try:  # bounded: the replicas of an empty server connect and sync in well under a second
            deadline = time.monotonic() + 30
            while client.info("replication").get("connected_slaves", 0) < count or client.wait(count, 1000) < count:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"bench: {count} replica(s) of the standalone Redis not in sync after 30 s")
                time.sleep(0.1)
        finally:
            client.close()
        return started

    def close(self) -> None:
        for app in reversed(self.apps):
            app.stop()
        for cluster in self.clusters:
            cluster.stop()
        for replica in self.replicas:
            replica.stop()
        self.redis.stop()


class PeakRss:
    """Peak RSS of a set of processes over a phase, each over its RSS at the start (or a ``baseline``, KiB).

    The kernel keeps the exact peak (VmHWM); it is reset at the start of the
    phase, so a spike between two samples is not missed.
    """

    def __init__(self, pids: list[int], baseline: dict[int, int] | None = None) -> None:
        self.pids = pids
        self.start = {pid: (baseline or {}).get(pid) or rss_kib(pid) for pid in pids}
        self.exact = all(reset_peak(pid) for pid in pids)

    def delta_mib(self) -> float:
        """The largest peak growth of any one process, in MiB."""
        return max((rss_kib(p, "VmHWM") - self.start[p]) / 1024 for p in self.pids)

    def peak_mib(self) -> float:
        return max(rss_kib(p, "VmHWM") / 1024 for p in self.pids)

    def start_mib(self) -> float:
        return max(self.start.values()) / 1024
