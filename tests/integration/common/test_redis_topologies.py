"""The tests' and ``make run``'s private Redis Cluster and Sentinel set-ups: started, failed over, restarted, resharded."""

from __future__ import annotations

import json
import socket
import threading
import time

import pytest
import redis
from redis.cluster import RedisCluster

from redfile_dev.cluster import SLOTS, ClusterProcess
from redfile_dev.ports import PortTaken
from redfile_dev.redis_server import find_redis_binary
from redfile_dev.sentinel import SentinelSet
from redfile_dev.testing import settings_overrides
from redfile_dev.testing import test_env as service_env
from redfile_dev.testing_topology import topology_client


def _keys_on_every_primary(client: RedisCluster, cluster: ClusterProcess) -> dict[str, int]:
    """One key per primary (a hash tag chosen for each primary's slots); ``{key: port}``."""
    placed: dict[str, int] = {}
    for i in range(200):
        key = f"{{tag{i}}}:k"
        port = client.get_node_from_key(key).port
        if port not in placed.values():
            client.set(key, str(port))
            placed[key] = port
    assert sorted(placed.values()) == sorted(node.port for node in cluster.primaries())
    return placed


def test_a_cluster_serves_every_slot_with_a_replica_per_primary(redis_cluster):
    for node in redis_cluster.nodes:
        info = redis.Redis(port=node.port).cluster("info")
        assert info["cluster_state"] == "ok" and int(info["cluster_slots_assigned"]) == SLOTS
    primaries = redis_cluster.primaries()
    assert len(primaries) == 3 and all(len(redis_cluster.replicas_of(p)) == 1 for p in primaries)
    assert all(node.port != 6379 and node.url.startswith("redis://127.0.0.1:") for node in redis_cluster.nodes)

    client = RedisCluster.from_url(redis_cluster.url)
    placed = _keys_on_every_primary(client, redis_cluster)
    for key, port in placed.items():
        assert redis.Redis(port=port).get(key) == str(port).encode()  # the key lives on that primary itself
    assert service_env(redis_cluster.url)["REDIS_MODE"] == "cluster"
    assert settings_overrides(redis_cluster.url)["redis_mode"] == "cluster"


def test_a_killed_cluster_primary_is_replaced_by_its_replica(redis_cluster):
    placed = _keys_on_every_primary(RedisCluster.from_url(redis_cluster.url), redis_cluster)
    victim = redis_cluster.primaries()[0]
    (replica,) = redis_cluster.replicas_of(victim)
    assert redis.Redis(port=victim.port).wait(1, 2000) == 1  # the replica has every key before the kill

    redis_cluster.kill(victim)
    assert redis_cluster.wait_failover(victim, timeout=20) is replica
    assert victim not in redis_cluster.primaries() and replica in redis_cluster.primaries()
    client = RedisCluster.from_url(redis_cluster.url)
    assert all(client.get(key) == str(port).encode() for key, port in placed.items())

    redis_cluster.start_node(victim)  # it comes back as its successor's replica
    redis_cluster.wait_healthy(20)
    assert victim in redis_cluster.replicas_of(replica)


def test_a_cluster_restart_keeps_its_ports_and_data(tmp_path):
    cluster = ClusterProcess(tmp_path, appendonly=True).start()
    try:
        ports = [node.port for node in cluster.nodes]
        topology_client(cluster).set("kept", b"1")
        for node in cluster.primaries():
            redis.Redis(port=node.port).wait(1, 2000)
    finally:
        cluster.stop()
    again = ClusterProcess(tmp_path, appendonly=True).start()
    try:
        assert [node.port for node in again.nodes] == ports
        assert topology_client(again).get("kept") == b"1"
    finally:
        again.stop()


def test_a_kept_port_now_taken_stops_the_start_and_says_by_whom(tmp_path):
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        (tmp_path / "ports.json").write_text(json.dumps({"ports": [port, port + 1]}))
        (tmp_path / "bootstrapped").touch()
        with pytest.raises(PortTaken, match=f"port {port}, kept in .*ports.json.*pid "):
            ClusterProcess(tmp_path, primaries=1, replicas=0).start()


def test_a_new_primary_gets_its_share_of_slots_and_keys_while_clients_write(redis_cluster):
    client = RedisCluster.from_url(redis_cluster.url)
    for i in range(300):
        client.set(f"k{i}", i)
    errors: list[Exception] = []
    writes = [0]
    done = threading.Event()

    def write_and_read() -> None:  # single-key commands through the move: redirects are followed, nothing fails
        writer = RedisCluster.from_url(redis_cluster.url)
        deadline = time.monotonic() + 60
        while not done.is_set() and time.monotonic() < deadline:
            n = writes[0]
            try:
                writer.set(f"w{n}", n)
                assert writer.get(f"w{n}") == str(n).encode()
                writes[0] += 1
            except AttributeError:
                # redis-py 8.1 dereferences None on an ASK to a node its CLUSTER SLOTS cache lacks (a new primary
                # before it owns a slot: redis/redis-py#4015); a fresh topology knows it
                writer.nodes_manager.initialize()
            except Exception as exc:
                errors.append(exc)
                return

    thread = threading.Thread(target=write_and_read, daemon=True)
    thread.start()
    try:
        new = redis_cluster.add_primary()
        assert redis_cluster.rebalance() == SLOTS // 4
    finally:
        done.set()
        thread.join(10)
    assert not errors and writes[0] > 0
    assert new in redis_cluster.primaries() and len(redis_cluster.primaries()) == 4
    assert redis.Redis(port=new.port).dbsize() > 0
    client = RedisCluster.from_url(redis_cluster.url)
    assert all(client.get(f"k{i}") == str(i).encode() for i in range(300))
    assert all(client.get(f"w{n}") == str(n).encode() for n in range(writes[0]))


def test_the_bundled_valkey_server_forms_a_cluster(tmp_path):
    cluster = ClusterProcess(tmp_path, primaries=3, replicas=0, binary=find_redis_binary(prefer_path=False)).start()
    try:
        assert len(cluster.primaries()) == 3
        assert topology_client(cluster).set("k", b"v")
    finally:
        cluster.stop()


def test_a_sentinel_set_promotes_a_replica_when_the_primary_dies(redis_sentinel):
    client = topology_client(redis_sentinel)
    client.set("before", b"1")
    assert client.wait(2, 2000) == 2
    env = service_env(redis_sentinel.url)
    assert env["REDIS_MODE"] == "sentinel" and env["REDIS_SENTINEL_MASTER"] == "redfile"
    assert env["REDIS_SENTINELS"].split(",") == redis_sentinel.sentinels and len(redis_sentinel.sentinels) == 3

    old = redis_sentinel.kill_primary()
    new = redis_sentinel.wait_failover(timeout=20)
    assert new is not old and new in redis_sentinel.data_nodes
    assert topology_client(redis_sentinel).get("before") == b"1"

    redis_sentinel.start_node(old)  # the sentinels make it a replica of the new primary
    redis_sentinel.wait_healthy(20)
    assert redis_sentinel.current_primary() is new
    assert redis.Redis(port=old.port).info("replication")["role"] == "slave"


def test_a_sentinel_restart_keeps_the_current_primary_and_data(tmp_path):
    first = SentinelSet(tmp_path, appendonly=True, sentinel_password="s3cret").start()
    try:
        topology_client(first).set("kept", b"1")
        first.kill_primary()
        promoted = first.wait_failover(20).port
    finally:
        first.stop()
    again = SentinelSet(tmp_path, appendonly=True, sentinel_password="s3cret").start()
    try:
        assert again.current_primary().port == promoted
        assert topology_client(again).get("kept") == b"1"
    finally:
        again.stop()


def test_a_standalone_url_gets_no_topology_settings(redis_url):
    assert "REDIS_MODE" not in service_env("redis://127.0.0.1:1/0") and "redis_mode" not in settings_overrides("redis://127.0.0.1:1/0")


@pytest.mark.topology("cluster")
def test_the_session_topology_is_the_cluster_asked_for(redis_server, redis_client):
    assert isinstance(redis_server, ClusterProcess) and isinstance(redis_client, RedisCluster)
    assert redis_client.dbsize() == 0  # every primary flushed
    assert service_env(redis_server.url)["REDIS_MODE"] == "cluster"


@pytest.mark.topology("sentinel")
def test_the_session_topology_is_the_sentinel_set_asked_for(redis_server, redis_client):
    assert isinstance(redis_server, SentinelSet)
    assert redis_client.set("k", b"v") and service_env(redis_server.url)["REDIS_SENTINEL_MASTER"] == "redfile"
