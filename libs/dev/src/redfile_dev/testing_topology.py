"""Which Redis topology the tests run against, and what a test needs to reach it.

``REDFILE_TEST_REDIS_MODE`` = ``standalone`` (default) | ``cluster`` | ``sentinel`` selects what the session's
``redis_server`` fixture starts (:func:`start_topology`).  Every topology started here is registered by its
data nodes' ports, so :func:`topology_env` can add ``REDIS_MODE`` (and for Sentinel ``REDIS_SENTINELS``,
``REDIS_SENTINEL_MASTER``, ``REDIS_SENTINEL_PASSWORD``) to the environment of a test whose ``REDIS_URL`` names
one of its nodes, and nothing to a test that brought its own standalone server.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import redis
from redis.cluster import RedisCluster
from redis.sentinel import Sentinel

from .cluster import ClusterProcess
from .redis_server import RedisProcess
from .sentinel import SentinelSet

MODES = ("standalone", "cluster", "sentinel")
MODE_VARIABLE = "REDFILE_TEST_REDIS_MODE"
Topology = RedisProcess | ClusterProcess | SentinelSet

_env_by_port: dict[int, dict[str, str]] = {}


def test_redis_mode() -> str:
    """The topology the tests run against (``REDFILE_TEST_REDIS_MODE``); an unknown one stops the run."""
    mode = os.environ.get(MODE_VARIABLE, "").strip().lower() or "standalone"
    if mode not in MODES:
        raise pytest.UsageError(f"{MODE_VARIABLE}={mode!r}: expected one of {', '.join(MODES)}")
    return mode


test_redis_mode.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


def start_topology(mode: str, data_dir: Path) -> Topology:
    """A fresh topology for the tests (no AOF, short failover timeouts), started and registered."""
    server: Topology
    if mode == "cluster":
        server = ClusterProcess(data_dir).start()
    elif mode == "sentinel":
        server = SentinelSet(data_dir).start()
    else:
        server = RedisProcess(data_dir, appendonly=False).start()
    register(server)
    return server


def register(server: Topology) -> None:
    """Remember the environment that points a service at ``server``, by the port of each of its data nodes."""
    if isinstance(server, ClusterProcess):
        env = {"REDIS_MODE": "cluster"}
        nodes = server.nodes
    elif isinstance(server, SentinelSet):
        env = {"REDIS_MODE": "sentinel", "REDIS_SENTINELS": ",".join(server.sentinels), "REDIS_SENTINEL_MASTER": server.master_name}
        if server.sentinel_password:
            env["REDIS_SENTINEL_PASSWORD"] = server.sentinel_password
        nodes = server.data_nodes
    else:
        return
    for node in nodes:
        _env_by_port[node.port] = env


def forget(server: Topology) -> None:
    for node in getattr(server, "data_nodes", None) or getattr(server, "nodes", []):
        _env_by_port.pop(node.port, None)


def topology_env(redis_url: str) -> dict[str, str]:
    """The extra environment for a service whose ``REDIS_URL`` is ``redis_url``: empty for a standalone server."""
    parts = urlsplit(redis_url)
    if parts.hostname not in ("127.0.0.1", "localhost") or parts.port is None:
        return {}
    return dict(_env_by_port.get(parts.port, {}))


class WholeCluster(RedisCluster):
    """A test's cluster client: ``keys`` lists the keys of every primary, as a test of one server expects."""

    def keys(self, pattern="*", **kwargs):
        kwargs.setdefault("target_nodes", RedisCluster.PRIMARIES)
        return super().keys(pattern, **kwargs)


def topology_client(server: Topology, **options) -> redis.Redis | RedisCluster:
    """A client that works across ``server``: a cluster client, the sentinels' primary, or a plain one."""
    if isinstance(server, ClusterProcess):
        return WholeCluster.from_url(server.url, **options)
    if isinstance(server, SentinelSet):
        hosts = [(host, int(port)) for host, port in (address.rsplit(":", 1) for address in server.sentinels)]
        sentinel = Sentinel(hosts, sentinel_kwargs={"password": server.sentinel_password, "socket_timeout": 2})
        return sentinel.master_for(server.master_name, **options)
    return redis.Redis.from_url(server.url, **options)


def flush(server: Topology) -> None:
    """Empty every primary of ``server``."""
    if isinstance(server, ClusterProcess | SentinelSet):
        server.flush()
        return
    client = redis.Redis.from_url(server.url)
    try:
        client.flushall()
    finally:
        client.close()


def skip_unless_topology(item: pytest.Item) -> None:
    """Skip a test marked ``@pytest.mark.topology("cluster", ...)`` when the run's mode is not one it names."""
    marker = item.get_closest_marker("topology")
    if marker is None:
        return
    mode = test_redis_mode()
    if mode not in marker.args:
        wanted = " or ".join(marker.args)
        pytest.skip(f"needs {MODE_VARIABLE}={wanted} (this run: {mode}; make test-{marker.args[0]})")
