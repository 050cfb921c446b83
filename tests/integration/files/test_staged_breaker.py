"""Staged chunk writes (a session chunk, a tus body) go through the process's circuit breaker, against real Redis.

A staged ``SET`` writes its RESP on a connection of the pool itself, past ``InstrumentedRedis``: it asks
the breaker first, stops once the breaker opens, and its outcome counts as any command's does.
"""

from __future__ import annotations

import io

import pytest
import redis
from redis.cluster import RedisCluster

from redfile_common.breaker import CLOSED, OPEN, BreakerOpen, CircuitBreaker
from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import connections_made, make_settings
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
def breaker(clock):
    return CircuitBreaker(failures=1, reset_timeout=1.0, clock=clock)


@pytest.fixture
def guarded(redis_url, breaker):
    """A Redis client of the test's own, with its own breaker on the test's clock."""
    c = make_redis(make_settings(ServiceSettings, redis_url, service_name="files"), breaker=breaker)
    yield c
    c.close()


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


def test_a_chunk_put_answers_503_while_the_breaker_is_open_and_stores_nothing(app, api, client, alice, redis_client):
    breaker = app.extensions["redfile"].breaker
    upload = api.create(alice, 2 * SIZE, chunk_size=SIZE).json
    before = dump(redis_client)
    body = OpensTheBreaker(b"c" * SIZE, breaker)
    resp = client.put(
        f"/uploads/{upload['id']}/chunks/0", headers=alice, input_stream=body, content_length=SIZE, content_type="application/octet-stream"
    )
    assert_unavailable(resp)
    assert dump(redis_client) == before
    resp = api.put(alice, upload["id"], 1, b"d" * SIZE)  # the breaker is open: refused before Redis is asked anything
    assert_unavailable(resp)
    assert dump(redis_client) == before


def test_a_tus_patch_answers_503_while_the_breaker_is_open_and_stores_nothing(app, tus, client, alice, redis_client):
    breaker = app.extensions["redfile"].breaker
    url = tus.new(alice, 2 * SIZE)
    before = dump(redis_client)
    body = OpensTheBreaker(b"e" * SIZE, breaker)
    resp = client.patch(url, headers={**alice, **TUS, "Upload-Offset": "0"}, input_stream=body, content_length=SIZE, content_type=OCTET)
    assert_unavailable(resp)
    assert dump(redis_client) == before  # no staged bytes left behind either
    resp = tus.patch(alice, url, 0, b"f" * SIZE)
    assert_unavailable(resp)
    assert dump(redis_client) == before
