"""``make run``'s Redis: a private standalone server, cluster or Sentinel set-up, or the one configured.

``REDFILE_REDIS_MODE`` = ``standalone`` (default) | ``cluster`` | ``sentinel`` picks the private topology:
one server with its data in ``data/redis``; three primaries with a replica each in ``data/redis-cluster``;
or a primary, two replicas and three sentinels in ``data/redis-sentinel``.  Each keeps its data (AOF) and
its ports across restarts.  With ``REDIS_URL`` set, none is started and the services get the environment's
``REDIS_MODE`` and sentinel settings as they are.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from .cluster import ClusterProcess
from .redis_server import RedisProcess
from .sentinel import SentinelSet

MODES = ("standalone", "cluster", "sentinel")
# make run's failover timings: slower than the tests' (a busy laptop is no dead node), still seconds
RUN_NODE_TIMEOUT_MS = 5000
RUN_SENTINEL_DOWN_AFTER_MS = 5000
RUN_SENTINEL_FAILOVER_TIMEOUT_MS = 30000


@dataclass
class PrivateRedis:
    """A started topology, the environment that points the services at it, and what to tell the user."""

    server: RedisProcess | ClusterProcess | SentinelSet
    env: dict[str, str]
    summary: str
    processes: list[RedisProcess] = field(default_factory=list)


def private_redis_mode() -> str:
    mode = os.environ.get("REDFILE_REDIS_MODE", "").strip().lower() or "standalone"
    if mode not in MODES:
        raise ValueError(f"REDFILE_REDIS_MODE={mode!r}: expected one of {', '.join(MODES)}")
    return mode


def _ports(nodes: Sequence[RedisProcess]) -> str:
    return ", ".join(str(node.port) for node in nodes)


def start_private_redis(mode: str, root: Path, shown, standalone_port: int | None = None) -> PrivateRedis:
    """Start the private topology ``mode`` under ``root`` (``shown(path)`` prints a path as the user sees it)."""
    if mode == "cluster":
        cluster = ClusterProcess(root / "redis-cluster", appendonly=True, node_timeout_ms=RUN_NODE_TIMEOUT_MS).start(timeout=60)
        primaries = cluster.primaries()
        replicas = [node for node in cluster.nodes if node not in primaries]
        summary = (
            f"private Redis Cluster: {len(primaries)} primaries on 127.0.0.1:{_ports(primaries)}, "
            f"{len(replicas)} replicas on {_ports(replicas)}, data in {shown(cluster.data_dir)}"
        )
        return PrivateRedis(cluster, {"REDIS_MODE": "cluster", "REDIS_URL": cluster.url}, summary, cluster.nodes)
    if mode == "sentinel":
        sentinels = SentinelSet(
            root / "redis-sentinel",
            appendonly=True,
            down_after_ms=RUN_SENTINEL_DOWN_AFTER_MS,
            failover_timeout_ms=RUN_SENTINEL_FAILOVER_TIMEOUT_MS,
        ).start(timeout=60)
        primary = sentinels.current_primary()
        env = {
            "REDIS_MODE": "sentinel",
            "REDIS_URL": primary.url,
            "REDIS_SENTINELS": ",".join(sentinels.sentinels),
            "REDIS_SENTINEL_MASTER": sentinels.master_name,
        }
        summary = (
            f"private Redis Sentinel set-up {sentinels.master_name!r}: primary on 127.0.0.1:{primary.port}, "
            f"replicas on {_ports(sentinels.replicas())}, sentinels on {_ports(sentinels.sentinel_nodes)}, "
            f"data in {shown(sentinels.data_dir)}"
        )
        return PrivateRedis(sentinels, env, summary, sentinels.nodes)
    server = RedisProcess(root / "redis", port=standalone_port).start()
    summary = f"private Redis on 127.0.0.1:{server.port}, data in {shown(server.data_dir)}"
    return PrivateRedis(server, {"REDIS_URL": server.url}, summary, [server])


def client_for(env: dict[str, str], **options) -> redis.Redis | RedisCluster:
    """A client of the Redis that ``env`` (``REDIS_MODE``, ``REDIS_URL``, ``REDIS_SENTINELS``...) names, as the services read it."""
    mode = (env.get("REDIS_MODE") or "standalone").strip().lower()
    if mode == "cluster":
        return RedisCluster.from_url(env["REDIS_URL"], **options)
    if mode == "sentinel":
        hosts = [
            (host.strip(), int(port)) for host, port in (item.rsplit(":", 1) for item in env["REDIS_SENTINELS"].split(",") if item.strip())
        ]
        sentinel_kwargs = {"password": env.get("REDIS_SENTINEL_PASSWORD") or None, **options}
        url_options = redis.connection.parse_url(env["REDIS_URL"]) if env.get("REDIS_URL") else {}
        auth = {k: url_options[k] for k in ("username", "password", "db") if url_options.get(k) is not None}
        return Sentinel(hosts, sentinel_kwargs=sentinel_kwargs).master_for(env.get("REDIS_SENTINEL_MASTER", "redfile"), **auth, **options)
    return redis.Redis.from_url(env["REDIS_URL"], **options)
