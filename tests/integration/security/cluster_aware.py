"""A test's own Redis client for a URL: redis-py's cluster client when the server is a cluster node."""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster


def connect(url: str) -> redis.Redis:
    client = redis.Redis.from_url(url)
    if client.info("cluster").get("cluster_enabled"):
        client.close()
        return RedisCluster.from_url(url)  # type: ignore[return-value]  # the tests use what both clients share
    return client


def flush(client: redis.Redis) -> None:
    """Empty every primary."""
    if isinstance(client, RedisCluster):
        client.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        client.flushall()
