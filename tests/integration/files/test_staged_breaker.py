"""Staged chunk writes (a session chunk, a tus body) go through the circuit breaker guarding their key, against
real Redis: the process's, or on a cluster that of the primary serving the key's slot.

A staged ``SET`` writes its RESP on a connection of the pool itself, past ``InstrumentedRedis``: it asks
the breaker first, stops once the breaker opens, and its outcome counts as any command's does.
"""

from __future__ import annotations

import io

import pytest
import redis
from redis.cluster import RedisCluster

from redfile_common.breaker import CLOSED, OPEN, BreakerOpen, CircuitBreaker
from redfile_common.redis_client import breaker_guarding
from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import connections_made, make_settings
from redfile_files.storage import keys
from redfile_files.storage.staged import StagedChunk

from .conftest import dump
from .tus_helpers import OCTET, TUS

SIZE = 256 * 1024  # large enough to be staged (tus: over SEND_AHEAD_MIN), small enough to be quick


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock():
    return Clock()


@pytest.fixture
def process_breaker(clock):
    return CircuitBreaker(failures=1, reset_timeout=1.0, clock=clock)


@pytest.fixture
def guarded(redis_url, process_breaker):
    """A Redis client of the test's own, with its own breaker on the test's clock."""
    c = make_redis(make_settings(ServiceSettings, redis_url, service_name="files"), breaker=process_breaker)
    yield c
    c.close()


def guarding(client, key: str) -> CircuitBreaker:
    """The breaker guarding ``key``: the process's, or on a cluster that of its slot's primary (on the same clock)."""
    found = breaker_guarding(client, key)
    assert found is not None
    return found


@pytest.fixture
def breaker(guarded):
    return guarding(guarded, "staged")


def force_open(breaker: CircuitBreaker) -> None:
    breaker.failed(breaker.before())
    assert breaker.state == OPEN


def test_an_open_breaker_refuses_a_staged_set_before_it_takes_a_connection(guarded, breaker, redis_client):
    force_open(breaker)
    made = connections_made(guarded)  # a cluster client has connected to learn the slots
    with pytest.raises(BreakerOpen):
        StagedChunk(guarded, "staged", SIZE).__enter__()
    assert connections_made(guarded) == made
    assert redis_client.exists("staged") == 0


def test_a_staged_set_stops_once_the_breaker_opens_and_stores_nothing(guarded, breaker, redis_client):
    with pytest.raises(BreakerOpen), StagedChunk(guarded, "staged", SIZE) as staged:
        staged.write(b"a" * 1024)
        force_open(breaker)  # another request's command found Redis hung
        staged.write(b"b" * (SIZE - 1024))
    assert redis_client.exists("staged") == 0


def test_a_staged_set_whose_connection_fails_counts_against_redis(guarded, breaker, redis_client):
    staged = StagedChunk(guarded, "staged", SIZE).__enter__()
    staged.write(b"a" * 1024)
    on = {"target_nodes": redis_client.get_node_from_key("staged")} if isinstance(redis_client, RedisCluster) else {}
    for c in redis_client.client_list(**on):
        if c["name"] == "redfile-files":
            redis_client.client_kill_filter(_id=c["id"], **on)
    with pytest.raises(redis.exceptions.ConnectionError):
        staged.write(b"b" * (SIZE - 1024))
        staged.finish()
    assert breaker.state == OPEN


def test_a_staged_set_may_be_the_probe_and_its_answer_closes_the_breaker(guarded, breaker, clock, redis_client):
    force_open(breaker)
    clock.now += 1.0
    with StagedChunk(guarded, "staged", 3) as staged:
        staged.write(b"abc")
    assert breaker.state == CLOSED
    assert redis_client.get("staged") == b"abc"


def _key_on(client, port: int, *, other_than: bool = False) -> str:
    return next(k for i in range(1000) if (client.get_node_from_key(k := f"staged:{{t{i}}}").port == port) != other_than)


def test_on_a_cluster_a_staged_set_to_a_dead_primary_opens_that_primarys_breaker_only(redis_cluster):
    """Uploads to the healthy primaries go on while the dead one's slots fail fast."""
    process = CircuitBreaker(failures=1, reset_timeout=300)
    client = make_redis(make_settings(ServiceSettings, redis_cluster.url, service_name="files"), breaker=process)
    try:
        victim = redis_cluster.primaries()[0]
        doomed, healthy = _key_on(client, victim.port), _key_on(client, victim.port, other_than=True)
        redis_cluster.kill(victim)
        with pytest.raises(redis.exceptions.ConnectionError), StagedChunk(client, doomed, 3) as staged:
            staged.write(b"abc")
        assert guarding(client, doomed).state == OPEN
        assert process.state == CLOSED and guarding(client, healthy).state == CLOSED
        with StagedChunk(client, healthy, 3) as staged:
            staged.write(b"abc")
        assert client.get(healthy) == b"abc"
        made = connections_made(client)
        with pytest.raises(BreakerOpen):
            StagedChunk(client, doomed, 3).__enter__()
        assert connections_made(client) == made
    finally:
        client.close()


# -- through HTTP: the app's own breaker ----------------------------------------------------
@pytest.fixture
def app(make_app):
    # the breaker stays open for the whole test once opened
    return make_app(max_chunk_bytes=SIZE, max_file_bytes=4 * SIZE, breaker_failures=1, breaker_reset_timeout=300)


class OpensTheBreaker(io.BytesIO):
    """A body whose first read opens the app's breaker: Redis is found hung once the request's reads are done."""

    def __init__(self, data: bytes, breaker: CircuitBreaker) -> None:
        super().__init__(data)
        self.breaker = breaker

    def _open(self) -> None:
        if self.breaker.state == CLOSED:
            self.breaker.failed(self.breaker.before())

    def read(self, size=-1):
        self._open()
        return super().read(size)

    def readinto(self, buffer):  # werkzeug's LimitedStream (tus) reads this way
        self._open()
        return super().readinto(buffer)


def assert_unavailable(resp) -> None:
    assert resp.status_code == 503, resp.get_data()
    assert resp.json["error"]["code"] == "service_unavailable" and int(resp.headers["Retry-After"]) >= 1


def guarding_chunk(app, file_id: str, index: int) -> CircuitBreaker:
    """The app's breaker guarding the chunk's slot, where it is staged: the process's, or that slot's primary's."""
    return guarding(app.extensions["redfile"].redis, keys.chunk_key(file_id, index, "staged"))


def test_a_chunk_put_answers_503_while_the_breaker_is_open_and_stores_nothing(app, api, client, alice, redis_client):
    upload = api.create(alice, 2 * SIZE, chunk_size=SIZE).json
    breaker = guarding_chunk(app, upload["id"], 0)
    before = dump(redis_client)
    body = OpensTheBreaker(b"c" * SIZE, breaker)
    resp = client.put(
        f"/uploads/{upload['id']}/chunks/0", headers=alice, input_stream=body, content_length=SIZE, content_type="application/octet-stream"
    )
    assert_unavailable(resp)
    assert dump(redis_client) == before
    resp = api.put(alice, upload["id"], 0, b"d" * SIZE)  # the chunk again: its breaker is open, the staged SET refused
    assert_unavailable(resp)
    assert dump(redis_client) == before


def test_a_tus_patch_answers_503_while_the_breaker_is_open_and_stores_nothing(app, tus, client, alice, redis_client):
    url = tus.new(alice, 2 * SIZE)
    breaker = guarding_chunk(app, url.rstrip("/").rsplit("/", 1)[-1], 0)
    before = dump(redis_client)
    body = OpensTheBreaker(b"e" * SIZE, breaker)
    resp = client.patch(url, headers={**alice, **TUS, "Upload-Offset": "0"}, input_stream=body, content_length=SIZE, content_type=OCTET)
    assert_unavailable(resp)
    assert dump(redis_client) == before  # no staged bytes left behind either
    resp = tus.patch(alice, url, 0, b"f" * SIZE)
    assert_unavailable(resp)
    assert dump(redis_client) == before
