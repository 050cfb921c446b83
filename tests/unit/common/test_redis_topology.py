"""The topology module's pure parts: INFO added up over a cluster's primaries, the marker key of a write, the
breaker guarding a key, what each Sentinel client connects with (no connection is made)."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster, key_slot
from redis.sentinel import SentinelManagedSSLConnection

from redfile_common.breaker import CircuitBreaker
from redfile_common.redis_client import Guarded, InstrumentedRedis, breaker_guarding
from redfile_common.redis_info import summary
from redfile_common.redis_topology import ClusterInfo, NodeBreakers, info_client, make_sentinel, readiness_client
from redfile_common.replicas import marker_of
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import make_settings


class _Primaries:
    def __init__(self, readings: dict) -> None:
        self.readings = readings

    def info(self, target_nodes=None):
        assert target_nodes == RedisCluster.PRIMARIES
        return self.readings


def _node(used: int, *, aof: int = 1, status: str = "ok", saved: int = 1_800_000_000, loading: int = 0) -> dict:
    return {
        "redis_version": "7.0.15",
        "used_memory": used,
        "maxmemory": 1000,
        "connected_clients": 2,
        "loading": loading,
        "aof_enabled": aof,
        "aof_last_write_status": status,
        "rdb_last_bgsave_status": "ok",
        "rdb_changes_since_last_save": 3,
        "rdb_last_save_time": saved,
        "maxmemory_policy": "noeviction",
    }


def test_cluster_info_adds_memory_and_takes_each_flag_at_its_worst():
    info = ClusterInfo(
        _Primaries({"b:2": _node(200, aof=0, saved=1_700_000_000), "a:1": _node(100, status="err", loading=1), "c:3": _node(300)})
    ).info()
    shown = summary(info)
    assert shown["used_memory_bytes"] == 600 and shown["maxmemory_bytes"] == 3000 and shown["memory_used_ratio"] == 0.2
    assert shown["connected_clients"] == 6
    persistence = shown["persistence"]
    assert persistence["loading"] is True and persistence["aof_enabled"] is False and persistence["aof_last_write_ok"] is False
    assert persistence["rdb_changes_since_last_save"] == 9 and persistence["rdb_last_save_time"] == "2023-11-14T22:13:20Z"
    assert info["nodes"] == {"a:1": {"used_memory": 100}, "b:2": {"used_memory": 200}, "c:3": {"used_memory": 300}}


def test_cluster_info_without_an_answer_is_a_connection_error():
    with pytest.raises(redis.exceptions.ConnectionError):
        ClusterInfo(_Primaries({})).info()


@pytest.mark.parametrize("key", ["files:{0123456789abcdef0123456789abcdef}:meta", "files:{u:alice}:quota", "rf:audit", "auth:user:{bob}"])
def test_the_marker_of_a_write_is_in_its_slot_and_under_its_prefix(key):
    marker = marker_of(key)
    assert key_slot(marker.encode()) == key_slot(key.encode())
    assert marker.split(":", 1)[0] == key.split(":", 1)[0] and marker != key


class _Node:
    def __init__(self, name: str) -> None:
        self.name = name


class _SlotTable:
    """The three primaries' slots as ``redis-cli --cluster create`` assigns them."""

    def get_node_from_slot(self, slot: int) -> _Node:
        return _Node("a:1" if slot <= 5460 else "b:2" if slot <= 10922 else "c:3")


class _Cluster(NodeBreakers, Guarded):
    """A cluster client as ``NodeBreakers`` sees it (mixed in as ``InstrumentedCluster`` has it): its breaker, its
    slot table, a command's or a key's slot."""

    def __init__(self, breaker) -> None:
        self.breaker = breaker
        self.nodes_manager = _SlotTable()

    def determine_slot(self, *args) -> int:
        return key_slot(args[1].encode())

    def keyslot(self, key: str) -> int:
        return key_slot(key.encode())


def _key_on(slots: range) -> str:
    return next(key for i in range(10_000) if key_slot((key := f"{{t{i}}}:k").encode()) in slots)


def test_on_a_cluster_the_breaker_guarding_a_key_is_its_primarys_the_one_its_commands_take():
    base = CircuitBreaker(failures=1, reset_timeout=5.0)
    cluster = _Cluster(base)
    on_a, also_on_a, on_b = _key_on(range(0, 100)), _key_on(range(5000, 5461)), _key_on(range(5461, 10923))
    guarding_a = breaker_guarding(cluster, on_a)
    assert guarding_a is not None and guarding_a is not base
    assert guarding_a is breaker_guarding(cluster, also_on_a)
    guarding_b = breaker_guarding(cluster, on_b)
    assert guarding_b is not None and guarding_b not in (base, guarding_a)
    guarding_a.failed(guarding_a.before())  # a command on that key found its primary dead
    assert (guarding_a.state, guarding_b.state, base.state) == ("open", "closed", "closed")
    assert cluster._breaker_for(("SET", on_a, "v")) is guarding_a  # what a command on the key goes through
    assert (guarding_a.failures, guarding_a.reset_timeout) == (base.failures, base.reset_timeout)


def test_without_a_cluster_the_breaker_guarding_a_key_is_the_processs_or_none():
    base = CircuitBreaker(failures=1, reset_timeout=5.0)
    standalone = InstrumentedRedis()  # connects on its first command only
    standalone.breaker = base
    assert breaker_guarding(standalone, "any") is base
    assert breaker_guarding(redis.Redis(), "any") is None
    assert breaker_guarding(_Cluster(None), "any") is None


@pytest.mark.parametrize(
    ("make", "timeout", "connect_timeout", "name"),
    [(make_sentinel, 5.0, 2.0, "redfile-files"), (info_client, 1.5, 1.5, "redfile-files-info"), (readiness_client, 3.0, 3.0, None)],
    ids=["requests", "info", "readiness"],
)
def test_every_sentinel_client_connects_with_the_acl_user_tls_and_its_own_timeouts(make, timeout, connect_timeout, name):
    settings = make_settings(
        ServiceSettings,
        "rediss://127.0.0.1:6390/0",
        redis_mode="sentinel",
        redis_sentinels=["127.0.0.1:26390", "127.0.0.1:26391"],
        redis_sentinel_password="sentinel-secret",
        redis_username="files",
        redis_password="redis-secret",
        redis_socket_timeout=5.0,
        redis_connect_timeout=2.0,
        redis_info_timeout=1.5,
        readiness_timeout=3.0,
        service_name="files",
    )
    pool = make(settings).connection_pool
    assert issubclass(pool.connection_class, SentinelManagedSSLConnection)  # rediss://: TLS to the primary too
    options = pool.connection_kwargs
    assert (options["username"], options["password"]) == ("files", "redis-secret")
    assert (options["socket_timeout"], options["socket_connect_timeout"], options.get("client_name")) == (timeout, connect_timeout, name)
    sentinels = [s.connection_pool.connection_kwargs for s in pool.sentinel_manager.sentinels]
    assert [(s["host"], s["port"]) for s in sentinels] == [("127.0.0.1", 26390), ("127.0.0.1", 26391)]
    assert all(s["password"] == "sentinel-secret" and s["socket_timeout"] == connect_timeout for s in sentinels)
