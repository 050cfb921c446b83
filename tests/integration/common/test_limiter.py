"""The failure limiter against real Redis: only failures count, places make it exact under concurrency."""

from __future__ import annotations

import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
from redis.cluster import RedisCluster

from redfile_common.limiter import FailureLimiter, Refused, Scope


def scope(name: str, limit: int, value: str = "x") -> Scope:
    return Scope(name, f"t:fail:{{{name}:{value}}}", f"t:check:{{{name}:{value}}}", limit)


def connect(url: str) -> redis.Redis:
    """A client of its own for ``url``: a cluster client when the server is a cluster node."""
    client = redis.Redis.from_url(url)
    if client.info("cluster").get("cluster_enabled"):
        client.close()
        return RedisCluster.from_url(url)  # type: ignore[return-value]  # the limiter uses what both clients share
    return client


def wait_until(condition, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(0.05)


def test_only_failures_count_and_the_limit_locks_the_scope_for_the_window(redis_client):
    limiter = FailureLimiter(redis_client, window=60)
    user = scope("user", 3)
    for _ in range(5):  # right secrets, however many, never lock
        limiter.succeeded(limiter.begin([user]))
    assert redis_client.get(user.failures_key) is None
    assert limiter.failed(limiter.begin([user])) == []
    assert limiter.failed(limiter.begin([user])) == []
    assert limiter.failed(limiter.begin([user])) == ["user"]  # the failure that reached the limit says so, once
    assert int(redis_client.get(user.failures_key)) == 3
    assert 55 <= redis_client.ttl(user.failures_key) <= 60
    with pytest.raises(Refused) as refused:
        limiter.begin([user])
    assert (refused.value.status, refused.value.code, refused.value.locked, refused.value.busy) == (
        429,
        "too_many_requests",
        ("user",),
        False,
    )
    assert 55 <= refused.value.retry_after <= 60 and refused.value.headers == {"Retry-After": str(refused.value.retry_after)}
    assert redis_client.zcard(user.checks_key) == 0  # every place given back, the refused attempt took none


def test_the_window_starts_at_the_first_failure_and_its_end_unlocks(redis_client):
    limiter = FailureLimiter(redis_client, window=2)
    link = scope("link", 2)
    limiter.failed(limiter.begin([link]))
    time.sleep(1)
    limiter.failed(limiter.begin([link]))  # the second failure does not push the window's end
    assert redis_client.ttl(link.failures_key) <= 1
    with pytest.raises(Refused) as refused:
        limiter.begin([link])
    assert refused.value.retry_after == 1
    wait_until(lambda: redis_client.get(link.failures_key) is None, 5, "the window to end")
    limiter.succeeded(limiter.begin([link]))


def test_an_attempt_is_refused_when_any_of_its_scopes_is_locked_and_forgets_only_what_it_names(redis_client):
    limiter = FailureLimiter(redis_client, window=60)
    user, ip = scope("user", 2), scope("ip", 3)
    assert limiter.failed(limiter.begin([user, ip])) == []
    assert limiter.failed(limiter.begin([user, ip])) == ["user"]
    with pytest.raises(Refused) as refused:
        limiter.begin([user, ip])
    assert refused.value.locked == ("user",)
    other_user = scope("user", 2, "y")
    assert limiter.failed(limiter.begin([other_user, ip])) == ["ip"]
    with pytest.raises(Refused) as refused:
        limiter.begin([scope("user", 2, "z"), ip])
    assert refused.value.locked == ("ip",)
    with pytest.raises(Refused) as refused:
        limiter.begin([user, ip])
    assert refused.value.locked == ("user", "ip")

    limiter_elsewhere = FailureLimiter(redis_client, window=60)
    fresh_ip = scope("ip", 3, "elsewhere")
    attempt = limiter_elsewhere.begin([other_user, fresh_ip])
    limiter_elsewhere.succeeded(attempt, forget={"user"})
    assert redis_client.get(other_user.failures_key) is None
    assert int(redis_client.get(ip.failures_key)) == 3  # another scope's failures are not forgotten


def test_places_in_flight_make_a_check_wait_then_refuse_with_retry_after_1(redis_client):
    limiter = FailureLimiter(redis_client, window=60, wait=0.3)
    user = scope("user", 2)
    first, second = limiter.begin([user]), limiter.begin([user])
    started = time.monotonic()
    with pytest.raises(Refused) as refused:  # two checks in flight: no third, though nothing has failed yet
        limiter.begin([user])
    assert 0.3 <= time.monotonic() - started < 2
    assert refused.value.busy and refused.value.retry_after == 1 and refused.value.headers["Retry-After"] == "1"
    limiter.succeeded(first)  # a right secret gives its place back ...
    third = limiter.begin([user])
    assert limiter.failed(third) == []  # ... a wrong one keeps it, as a failure
    limiter.abandon(second)  # an error: the place is given back, nothing counted
    assert int(redis_client.get(user.failures_key)) == 1
    assert redis_client.zcard(user.checks_key) == 0


def test_a_waiting_check_gets_the_place_a_finished_one_gives_back(redis_client):
    limiter = FailureLimiter(redis_client, window=60, wait=5)
    user = scope("user", 1)
    first = limiter.begin([user])
    timer = threading.Timer(0.3, limiter.succeeded, args=(first,))
    timer.start()
    try:
        second = limiter.begin([user])
    finally:
        timer.join(5)
    limiter.succeeded(second)


def test_places_are_all_or_none(redis_client):
    limiter = FailureLimiter(redis_client, window=60, wait=0)
    user, ip = scope("user", 5), scope("ip", 1)
    held = limiter.begin([ip])
    with pytest.raises(Refused):
        limiter.begin([user, ip])
    assert redis_client.zcard(user.checks_key) == 0  # the busy address left no place behind for the user
    limiter.abandon(held)


def test_a_dead_checks_place_frees_itself_after_the_hold_dated_by_redis_time(redis_client):
    limiter = FailureLimiter(redis_client, window=60, hold=1, wait=0)
    user = scope("user", 1)
    limiter.begin([user])  # never ended: its worker died
    [(_, until)] = redis_client.zrange(user.checks_key, 0, -1, withscores=True)
    seconds, micros = redis_client.time()
    assert 0 < until - (seconds + micros / 1e6) <= 1
    assert 0 < redis_client.ttl(user.checks_key) <= 1
    with pytest.raises(Refused):
        limiter.begin([user])

    def admitted() -> bool:
        try:
            limiter.abandon(limiter.begin([user]))
        except Refused:
            return False
        return True

    wait_until(admitted, 5, "the dead check's place to free itself")


def test_an_attempt_needs_a_scope(redis_client):
    with pytest.raises(ValueError):
        FailureLimiter(redis_client, window=60).begin([])


@pytest.mark.parametrize("limit", [1, 5])
def test_simultaneous_guesses_get_exactly_the_limits_worth_of_checks(redis_url, limit):
    """Guessers on their own connections, released together: exactly ``limit`` checks run, every other is refused."""
    guessers = 24
    barrier = threading.Barrier(guessers)
    user, ip = scope("user", limit), scope("ip", 100)

    def guess(_) -> str:
        client = connect(redis_url)
        limiter = FailureLimiter(client, window=60, wait=1.0)
        try:
            barrier.wait(10)
            try:
                attempt = limiter.begin([user, ip])
            except Refused as refused:
                return "busy" if refused.busy else "locked"
            time.sleep(0.02)  # the check takes a while, so the guesses overlap
            limiter.failed(attempt)
            return "checked"
        finally:
            client.close()

    with ThreadPoolExecutor(guessers) as pool:
        outcomes = Counter(pool.map(guess, range(guessers), timeout=30))
    assert outcomes["checked"] == limit, outcomes
    assert outcomes["checked"] + outcomes["busy"] + outcomes["locked"] == guessers
    with connect(redis_url) as client:
        assert int(client.get(user.failures_key)) == limit
        assert int(client.get(ip.failures_key)) == limit
        assert client.zcard(user.checks_key) == 0


def test_simultaneous_right_secrets_are_all_served(redis_url):
    """Right secrets arriving together wait for a place instead of being refused."""
    checks = 12
    barrier = threading.Barrier(checks)
    link = scope("link", 2)

    def check(_) -> bool:
        client = connect(redis_url)
        limiter = FailureLimiter(client, window=60, wait=5.0)
        try:
            barrier.wait(10)
            attempt = limiter.begin([link])
            time.sleep(0.01)
            limiter.succeeded(attempt)
            return True
        finally:
            client.close()

    with ThreadPoolExecutor(checks) as pool:
        assert all(pool.map(check, range(checks), timeout=30))


def _slowed_pair(client: str, limit: int = 10) -> Scope:
    return Scope("pair", f"t:fail:{{pair:{client}}}", f"t:check:{{pair:{client}}}", limit)


def _target_attempt(limiter: FailureLimiter, client: str, ceiling: int = 2):
    target = Scope("target", "t:fail:{target}", "t:check:{target}", ceiling, slows=True)
    return limiter.begin([target, _slowed_pair(client)], cooldown=f"t:wait:{{target}}:{client}")


def test_a_slowing_scope_never_locks_and_past_its_ceiling_only_the_clients_that_failed_wait(redis_client):
    limiter = FailureLimiter(redis_client, window=60, max_delay=1)
    assert limiter.failed(_target_attempt(limiter, "c1")) == []  # under the ceiling: no wait for anybody
    assert limiter.failed(_target_attempt(limiter, "c2")) == ["target"]  # reaches the ceiling: c2 waits 2^0 = 1 s
    assert 0 < redis_client.pttl("t:wait:{target}:c2") <= 1000
    assert redis_client.zcard("t:check:{target}") == 0 and not redis_client.exists("t:check:{target}")  # it takes no places
    with pytest.raises(Refused) as slowed:
        _target_attempt(limiter, "c2")
    assert (slowed.value.slowed, slowed.value.locked, slowed.value.retry_after, slowed.value.busy) == (True, ("target",), 1, False)
    limiter.failed(_target_attempt(limiter, "c1"))  # c1 failed before the ceiling, so it had no wait; now it has one
    assert redis_client.exists("t:wait:{target}:c1")
    for fresh in ("c3", "c4", "c5"):  # clients that have not failed are admitted at once, however far past the ceiling
        limiter.succeeded(_target_attempt(limiter, fresh), forget={"pair"})
    assert int(redis_client.get("t:fail:{target}")) == 3  # a right secret does not forget the target's failures
    wait_until(lambda: not redis_client.exists("t:wait:{target}:c2"), 5, "c2's wait to end")
    attempt = _target_attempt(limiter, "c2")  # a delay, not a lockout
    limiter.failed(attempt)
    assert 0 < redis_client.pttl("t:wait:{target}:c2") <= 1000  # 2^(4 - 2) = 4 s, capped at max_delay


def test_the_delay_doubles_with_each_failure_past_the_ceiling_and_the_right_secret_ends_it(redis_client):
    limiter = FailureLimiter(redis_client, window=60, max_delay=60)
    waits = []
    for i in range(4):  # a different client each time: none of them is made to wait before its own check
        limiter.failed(_target_attempt(limiter, f"d{i}", ceiling=1))
        waits.append(redis_client.pttl(f"t:wait:{{target}}:d{i}"))
    assert [round(w / 1000) for w in waits] == [1, 2, 4, 8]
    with pytest.raises(Refused) as slowed:
        _target_attempt(limiter, "d3", ceiling=1)
    assert 7 <= slowed.value.retry_after <= 8
    redis_client.delete("t:wait:{target}:d0")  # as if d0 had waited its second
    limiter.succeeded(_target_attempt(limiter, "d0", ceiling=1), forget={"pair"})
    assert not redis_client.exists("t:wait:{target}:d0") and not redis_client.exists("t:fail:{pair:d0}")
