"""The circuit breaker in front of Redis (on a clock of the test's own) and the per-request budget (issue 18)."""

from __future__ import annotations

import threading

import pytest

from redfile_common import deadline
from redfile_common.breaker import CLOSED, HALF_OPEN, OPEN, BreakerOpen, CircuitBreaker


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(failures=3, reset=1.0):
    clock, changes = Clock(), []
    breaker = CircuitBreaker(failures=failures, reset_timeout=reset, clock=clock, on_change=lambda old, new: changes.append((old, new)))
    return breaker, clock, changes


def test_failures_in_a_row_open_it_and_a_success_between_resets_the_count():
    breaker, _, changes = make(failures=3)
    for _ in range(2):
        breaker.failed(breaker.before())
    breaker.succeeded(breaker.before())
    for _ in range(2):
        breaker.failed(breaker.before())
    assert breaker.state == CLOSED and not changes
    breaker.failed(breaker.before())
    assert breaker.state == OPEN and changes == [(CLOSED, OPEN)]


def test_open_it_refuses_at_once_then_lets_exactly_one_probe_through():
    breaker, clock, changes = make(failures=1, reset=2.0)
    breaker.failed(breaker.before())
    with pytest.raises(BreakerOpen) as refused:
        breaker.before()
    assert refused.value.retry_after == pytest.approx(2.0)
    clock.now += 2.0
    assert breaker.before() is True  # the probe
    assert breaker.state == HALF_OPEN
    with pytest.raises(BreakerOpen):
        breaker.before()  # everyone else while the probe is out
    breaker.succeeded(True)
    assert breaker.state == CLOSED and breaker.before() is False
    assert changes == [(CLOSED, OPEN), (OPEN, HALF_OPEN), (HALF_OPEN, CLOSED)]


def test_a_failed_probe_opens_it_for_another_period_and_a_probe_that_asked_nothing_passes_its_turn():
    breaker, clock, _ = make(failures=1, reset=1.0)
    breaker.failed(breaker.before())
    clock.now += 1.0
    breaker.failed(breaker.before())
    assert breaker.state == OPEN
    with pytest.raises(BreakerOpen):
        breaker.before()
    clock.now += 1.0
    breaker.released(breaker.before())  # e.g. its request had no budget left: no verdict on Redis
    assert breaker.before() is True  # the next command probes
    breaker.succeeded(True)
    assert breaker.state == CLOSED


def test_concurrent_callers_get_one_probe():
    breaker, clock, _ = make(failures=1)
    breaker.failed(breaker.before())
    clock.now += 5
    probes, refused = [], []
    barrier = threading.Barrier(8)

    def call():
        barrier.wait()
        try:
            probes.append(breaker.before())
        except BreakerOpen:
            refused.append(1)

    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert probes == [True] and len(refused) == 7


def test_the_budget_cuts_timeouts_and_refuses_when_spent():
    assert deadline.timeout(5.0) == 5.0  # outside a request
    budget = deadline.begin(2.0)
    try:
        assert deadline.timeout(5.0) == 2.0 and deadline.timeout(1.0) == 1.0
        budget.spend(1.5)
        assert deadline.timeout(5.0) == pytest.approx(0.5)
        budget.spend(0.5)
        with pytest.raises(deadline.DeadlineExceeded):
            deadline.timeout(5.0)
    finally:
        deadline.end()
    assert deadline.current() is None


def test_a_budget_goes_along_to_another_thread_and_a_long_call_may_ask_for_more():
    from concurrent.futures import ThreadPoolExecutor

    budget = deadline.begin(2.0)
    try:
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(deadline.carried(deadline.current)).result(5) is budget
            assert pool.submit(deadline.current).result(5) is None  # not carried: no budget
        budget.spend(1.5)
        deadline.at_least(10.0)
        assert budget.left() == pytest.approx(10.0)
        deadline.at_least(1.0)  # never less
        assert budget.left() == pytest.approx(10.0)
    finally:
        deadline.end()


def test_an_answer_to_a_command_sent_before_the_opening_closes_it_and_the_next_opening_still_probes():
    breaker, clock, _ = make(failures=1)
    breaker.failed(breaker.before())  # opens
    clock.now += 1.0
    assert breaker.before() is True  # a probe goes out...
    breaker.succeeded(False)  # ...and a command sent before the opening is answered first
    assert breaker.state == CLOSED
    breaker.failed(breaker.before())  # opens again
    clock.now += 1.0
    assert breaker.before() is True  # a new probe, not refused for ever behind the first


def test_a_floor_lets_a_block_wait_past_a_spent_budget_and_charges_what_it_waited():
    budget = deadline.begin(1.0)
    try:
        budget.spend(1.5)
        with deadline.floor(0.25):
            assert deadline.timeout(5.0) == pytest.approx(0.25)  # not DeadlineExceeded
            deadline.spend(0.1)
        assert deadline.current() is budget and budget.left() == pytest.approx(-0.6)
        budget.grant(2.0)  # more left than the floor: the block may use it all
        with deadline.floor(0.25):
            assert deadline.timeout(5.0) == pytest.approx(1.4)
    finally:
        deadline.end()
    with deadline.floor(0.25):  # outside a request: nothing to do
        assert deadline.current() is None
