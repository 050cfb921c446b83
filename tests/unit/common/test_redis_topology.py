"""The topology module's pure parts: INFO added up over a cluster's primaries, the marker key of a write."""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster, key_slot

from redfile_common.redis_info import summary
from redfile_common.redis_topology import ClusterInfo
from redfile_common.replicas import marker_of


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
