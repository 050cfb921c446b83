"""REDIS_WAIT_REPLICAS on a real primary with two replicas (Sentinel): a request that changes something answers
2xx only once the replicas have what it wrote; too few replicas in time is a 503, within the request's budget."""

from __future__ import annotations

import time

import pytest
import redis

from redfile_common.app import create_service_app, redfile
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import make_settings


def _app(sentinels, wait: int, **extra):
    app = create_service_app(
        "probe", make_settings(ServiceSettings, sentinels.url, service_name="files", redis_wait_replicas=wait, **extra), title="probe"
    )

    @app.post("/probe/<name>")
    def write(name):
        client = redfile().redis
        client.set(f"files:{{{name}}}:a", b"1")
        client.hset(f"files:{{u:{name}}}:b", "f", b"2")  # a second slot
        return {"written": name}, 201

    @app.get("/probe/<name>")
    def read(name):
        value = redfile().redis.get(f"files:{{{name}}}:a")
        return {"value": value.decode() if isinstance(value, bytes) else ""}

    return app


def _sent(sentinels, command: str) -> int:
    stats = redis.Redis(port=sentinels.current_primary().port).info("commandstats")
    return int(stats.get(f"cmdstat_{command.lower()}", {}).get("calls", 0))


def test_a_write_is_answered_once_both_replicas_have_it(redis_sentinel):
    client = _app(redis_sentinel, 2).test_client()
    waits = _sent(redis_sentinel, "WAIT")
    resp = client.post("/probe/alpha")
    assert resp.status_code == 201, resp.get_json()
    assert _sent(redis_sentinel, "WAIT") == waits + 1  # one marker for the one primary, whatever the slots
    for replica in redis_sentinel.replicas():
        assert redis.Redis(port=replica.port).get("files:{alpha}:a") == b"1"
    assert client.get("/probe/alpha").get_json() == {"value": "1"}
    assert _sent(redis_sentinel, "WAIT") == waits + 1  # a read confirms nothing


def test_without_the_setting_no_wait_is_sent(redis_sentinel):
    client = _app(redis_sentinel, 0).test_client()
    waits = _sent(redis_sentinel, "WAIT")
    assert client.post("/probe/beta").status_code == 201
    assert _sent(redis_sentinel, "WAIT") == waits


def test_fewer_replicas_than_asked_is_a_503_within_the_budget_and_the_write_is_whole(redis_sentinel):
    client = _app(redis_sentinel, 3, request_budget=1.0).test_client()
    started = time.monotonic()
    resp = client.post("/probe/gamma")
    took = time.monotonic() - started
    assert resp.status_code == 503, resp.get_json()
    assert resp.get_json()["error"]["code"] == "service_unavailable" and resp.headers["Retry-After"]
    assert took < 3.0, took  # the WAIT took what the budget had left, not its own timeout
    assert client.get("/probe/gamma").get_json() == {"value": "1"}  # on the primary, whole; repeating it is safe
    assert _app(redis_sentinel, 2).test_client().post("/probe/gamma").status_code == 201


@pytest.mark.parametrize("stopped", [1, 2])
def test_a_replica_down_fails_only_the_writes_that_need_it(redis_sentinel, stopped):
    for replica in redis_sentinel.replicas()[:stopped]:
        replica.kill()
    assert _app(redis_sentinel, 2, request_budget=0.5).test_client().post("/probe/delta").status_code == 503
    expected = 201 if stopped == 1 else 503
    assert _app(redis_sentinel, 1, request_budget=0.5).test_client().post("/probe/delta").status_code == expected


def test_on_a_cluster_each_primary_written_confirms_its_own_replica(redis_cluster):
    from redis.cluster import RedisCluster

    app = create_service_app(
        "probe", make_settings(ServiceSettings, redis_cluster.url, service_name="files", redis_wait_replicas=1), title="probe"
    )
    names = [f"n{i}" for i in range(12)]  # twelve slots: every primary gets some

    @app.post("/probe")
    def write():
        for name in names:
            redfile().redis.set(f"files:{{{name}}}:a", b"1")
        return {}, 201

    probe = RedisCluster.from_url(redis_cluster.url)
    owners = {probe.get_node_from_key(f"files:{{{n}}}:a").port for n in names}
    assert len(owners) == 3

    def waits() -> dict[int, int]:
        return {
            p.port: int(redis.Redis(port=p.port).info("commandstats").get("cmdstat_wait", {}).get("calls", 0))
            for p in redis_cluster.primaries()
        }

    before = waits()
    assert app.test_client().post("/probe").status_code == 201
    assert {port: calls - before[port] for port, calls in waits().items()} == dict.fromkeys(owners, 1)
    for primary in redis_cluster.primaries():
        for replica in redis_cluster.replicas_of(primary):
            held = [n for n in names if probe.get_node_from_key(f"files:{{{n}}}:a").port == primary.port]
            reader = redis.Redis(port=replica.port, single_connection_client=True)
            reader.execute_command("READONLY")  # a replica answers reads of its primary's slots on this connection
            assert [reader.get(f"files:{{{n}}}:a") for n in held] == [b"1"] * len(held)
