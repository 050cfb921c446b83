"""The ACL users of users.acl on a real Redis Cluster, as the chart applies them on every node.

A cluster client needs more than a standalone one before it sends a single command of the app:
``CLUSTER SLOTS`` to learn the nodes, ``COMMAND`` (and ``COMMAND GETKEYS``) to find a command's keys,
``ASKING`` to follow a slot being moved, and ``WAIT`` for ``REDIS_WAIT_REPLICAS``.  Each service's user
connects here exactly as the service does (``REDIS_MODE=cluster``) and uses its own key spaces.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import redis
from redis.backoff import NoBackoff
from redis.cluster import RedisCluster
from redis.retry import Retry

from redfile_dev.cluster import ClusterProcess

# What redis-py's cluster client sends of its own (argument lists as ACL DRYRUN takes them).
CLIENT_COMMANDS = (
    ("CLUSTER", "SLOTS"),
    ("CLUSTER", "SHARDS"),
    ("COMMAND",),
    ("COMMAND", "GETKEYS", "GET", "k"),
    ("ASKING",),
    ("WAIT", "0", "1"),
)


@pytest.fixture(scope="module")
def acl_cluster(tmp_path_factory, acl_redis) -> Iterator[ClusterProcess]:
    """Three primaries, each given the rendered ACL users (the default user stays on for the harness)."""
    cluster = ClusterProcess(tmp_path_factory.mktemp("acl-cluster"), primaries=3, replicas=0).start()
    rendered = [line.split() for line in acl_redis.acl_file.read_text().splitlines() if line.strip()]
    try:
        for node in cluster.nodes:
            admin = redis.Redis(port=node.port, socket_timeout=5)
            for words in rendered:
                if words[1] != "default":
                    admin.execute_command("ACL", "SETUSER", *words[1:])
            admin.close()
        yield cluster
    finally:
        cluster.stop()


def as_cluster_user(cluster: ClusterProcess, acl_redis, user: str) -> RedisCluster:
    return RedisCluster(
        host="127.0.0.1",
        port=cluster.nodes[0].port,
        username=user,
        password=acl_redis.passwords[user],
        socket_timeout=5,
        retry=Retry(NoBackoff(), 0),
    )


@pytest.mark.parametrize("user", ["redfile-auth", "redfile-files", "redfile-admin"])
def test_every_service_user_may_run_the_cluster_clients_own_commands(acl_cluster, acl_redis, user):
    harness = redis.Redis(port=acl_cluster.nodes[0].port, socket_timeout=5, decode_responses=True)
    refused = [c for c in CLIENT_COMMANDS if harness.execute_command("ACL", "DRYRUN", user, *c) != "OK"]
    harness.close()
    assert refused == []
    client = as_cluster_user(acl_cluster, acl_redis, user)
    try:
        node = client.get_primaries()[0]
        assert client.execute_command("WAIT", 0, 10, target_nodes=node) == 0
    finally:
        client.close()


def test_files_works_on_every_primary_as_its_user(acl_cluster, acl_redis):
    client = as_cluster_user(acl_cluster, acl_redis, "redfile-files")
    try:
        keys = [f"files:chunk:{{f{i}}}:0" for i in range(30)]
        for key in keys:
            client.set(key, b"bytes")
        owners = {client.get_node_from_key(k).name for k in keys}
        assert len(owners) == 3  # the keys really live on every primary
        assert [client.get(k) for k in keys] == [b"bytes"] * len(keys)
        assert client.eval("return redis.call('GET', KEYS[1])", 1, keys[0]) == b"bytes"
        assert sorted(client.scan_iter(match="files:chunk:*")) == sorted(k.encode() for k in keys)
        with pytest.raises(redis.exceptions.NoPermissionError):
            client.get("auth:user:alice")
    finally:
        client.close()


def test_no_service_user_may_change_the_cluster(acl_cluster):
    harness = redis.Redis(port=acl_cluster.nodes[0].port, socket_timeout=5, decode_responses=True)
    try:
        for user in ("redfile-auth", "redfile-files", "redfile-admin"):
            for command in (
                ("CLUSTER", "FORGET", "x" * 40),
                ("CLUSTER", "RESET"),
                ("CLUSTER", "FAILOVER"),
                ("CLUSTER", "MEET", "1.2.3.4", "6379"),
            ):
                assert harness.execute_command("ACL", "DRYRUN", user, *command) != "OK", (user, command)
    finally:
        harness.close()
