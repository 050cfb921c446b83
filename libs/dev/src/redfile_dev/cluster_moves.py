"""Moving hash slots between cluster primaries, keys and all (what ``redis-cli --cluster rebalance`` does)."""

from __future__ import annotations

import time
from typing import TypeVar

import redis

from .redis_server import RedisProcess

Node = TypeVar("Node")
MIGRATE_BATCH = 100
MIGRATE_TIMEOUT_MS = 5000


def plan_moves(owners: dict[Node, list[int]]) -> list[tuple[int, Node, Node]]:
    """``(slot, source, target)`` moves that leave every owner with ``total // n`` or one more slots.

    Sources give their highest slots first; the owners that end with one more are those that had most.
    """
    total = sum(len(slots) for slots in owners.values())
    ranked = sorted(owners, key=lambda node: -len(owners[node]))
    share, extra = divmod(total, len(ranked))
    target_count = {node: share + (1 if i < extra else 0) for i, node in enumerate(ranked)}
    spare: list[tuple[int, Node]] = []
    for node in ranked:
        surplus = len(owners[node]) - target_count[node]
        if surplus > 0:
            spare.extend((slot, node) for slot in sorted(owners[node])[-surplus:])
    moves: list[tuple[int, Node, Node]] = []
    for node in ranked:
        for _ in range(target_count[node] - len(owners[node])):
            slot, source = spare.pop()
            moves.append((slot, source, node))
    return moves


def _client(node: RedisProcess) -> redis.Redis:
    return redis.Redis(port=node.port, socket_timeout=MIGRATE_TIMEOUT_MS / 1000 + 2, socket_connect_timeout=1)


def _setslot_all(client: redis.Redis, slots: list[int], *state: str) -> None:
    pipe = client.pipeline(transaction=False)
    for slot in slots:
        pipe.execute_command("CLUSTER", "SETSLOT", slot, *state)
    pipe.execute()


def move_slots(
    slots: list[int], source: RedisProcess, target: RedisProcess, ids: dict[int, str], primaries: list[RedisProcess], timeout: float = 30.0
) -> None:
    """Move ``slots`` from ``source`` to ``target``, keys and all; then every primary in ``primaries`` knows the new owner.

    Each slot is marked importing on the target and migrating on the source (clients get ASK for keys already
    moved), emptied with ``MIGRATE ... KEYS``, and given to the target: first on the target, which bumps its
    epoch, then on the source and the others.  Commands for the batch's slots go in one pipeline per node.
    """
    deadline = time.monotonic() + timeout
    clients = {node.port: _client(node) for node in {source, target, *primaries}}
    src, dst = clients[source.port], clients[target.port]
    try:
        _setslot_all(dst, slots, "IMPORTING", ids[source.port])
        _setslot_all(src, slots, "MIGRATING", ids[target.port])
        for slot in slots:
            while keys := src.execute_command("CLUSTER", "GETKEYSINSLOT", slot, MIGRATE_BATCH):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"slot {slot} still has keys on port {source.port} after {timeout:.0f}s; see {source.log_path}")
                src.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, MIGRATE_TIMEOUT_MS, "REPLACE", "KEYS", *keys)
        _setslot_all(dst, slots, "NODE", ids[target.port])
        _setslot_all(src, slots, "NODE", ids[target.port])
        for node in primaries:
            if node.port not in (source.port, target.port):
                _setslot_all(clients[node.port], slots, "NODE", ids[target.port])
    finally:
        for client in clients.values():
            client.close()
