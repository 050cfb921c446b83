"""Against a real Redis of the test's own: what a command that times out does next (issue 18).

A script (or any write) that timed out may have run, so it is never sent again; a read is tried
again while the request's budget lasts, and never past it; a Redis that stops answering opens the
process's circuit breaker, which then fails commands at once, and a single probe closes it again.
"""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis

from redfile_common import deadline
from redfile_common.breaker import CLOSED, OPEN, BreakerOpen, CircuitBreaker
from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.redis_server import RedisProcess
from redfile_dev.testing import make_settings

pytestmark = pytest.mark.timing  # asserts a time bound of issue 18: run alone (make test's second phase)

# INCR, then keep Redis busy for ARGV[1] microseconds: longer than the client's socket timeout
SLOW_INCR = """
redis.call('INCR', KEYS[1])
local start = redis.call('TIME')
local now = start
while (now[1] - start[1]) * 1000000 + (now[2] - start[2]) < tonumber(ARGV[1]) do
  now = redis.call('TIME')
end
return 1
"""


@pytest.fixture
def server(tmp_path):
    proc = RedisProcess(tmp_path / "redis", appendonly=False).start()
    yield proc
    if proc.proc is not None and proc.proc.poll() is None:
        os.kill(proc.proc.pid, signal.SIGCONT)
    proc.kill()


def client_for(server, breaker=None, **extra):
    settings = make_settings(ServiceSettings, server.url, service_name="files", **extra)
    return make_redis(settings, breaker=breaker) if breaker is not None else make_redis(settings)


def test_a_script_that_timed_out_is_not_sent_again(server):
    client = client_for(server, redis_socket_timeout=0.3, redis_retries=3)
    direct = redis.Redis.from_url(server.url)
    script = client.register_script(SLOW_INCR)
    direct.script_load(SLOW_INCR)
    with pytest.raises(redis.exceptions.TimeoutError):
        script(keys=["runs"], args=[700_000])
    time.sleep(3.5)  # long enough for any repeated run to have finished
    assert int(direct.get("runs") or 0) == 1
    client.close()


def test_a_read_is_tried_again_but_never_past_the_budget(server):
    client = client_for(server, redis_socket_timeout=0.4, redis_retries=5)
    client.set("k", "v")
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        deadline.begin(1.0)
        started = time.monotonic()
        with pytest.raises(redis.exceptions.TimeoutError):
            client.get("k")
        took = time.monotonic() - started
    finally:
        deadline.end()
        os.kill(server.proc.pid, signal.SIGCONT)
    # without the budget: 6 tries of 0.4 s and the backoff between them
    assert 0.8 <= took < 1.3, took
    assert client.get("k") == b"v"  # a fresh connection once Redis answers


def test_a_spent_budget_sends_nothing(server):
    client = client_for(server)
    budget = deadline.begin(0.5)
    budget.spend(0.6)
    try:
        with pytest.raises(deadline.DeadlineExceeded):
            client.set("never", "1")
    finally:
        deadline.end()
    assert client.get("never") is None


def test_the_breaker_opens_on_a_hung_redis_fails_at_once_and_one_probe_closes_it(server):
    changes = []
    breaker = CircuitBreaker(failures=2, reset_timeout=0.5, on_change=lambda old, new: changes.append(new))
    client = client_for(server, breaker=breaker, redis_socket_timeout=0.3, redis_retries=0)
    client.set("k", "v")
    os.kill(server.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(2):
            with pytest.raises(redis.exceptions.TimeoutError):
                client.get("k")
        assert breaker.state == OPEN
        started = time.monotonic()
        with pytest.raises(BreakerOpen):
            client.get("k")
        assert time.monotonic() - started < 0.1  # no socket was waited on
    finally:
        os.kill(server.proc.pid, signal.SIGCONT)
    time.sleep(0.6)
    assert client.get("k") == b"v"  # the probe
    assert breaker.state == CLOSED
    assert changes == ["open", "half_open", "closed"]
