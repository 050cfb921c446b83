"""``redis_topology.reachable``: redis-py's "cluster cannot be connected" as the network error behind it."""

from __future__ import annotations

import pytest
import redis

from redfile_common.deadline import DeadlineExceeded
from redfile_common.redis_topology import reachable


def _raising(cause: Exception | None, message: str = "Redis Cluster cannot be connected. Please provide at least one reachable node"):
    def call():
        if cause is None:
            raise redis.exceptions.RedisClusterException(message)
        raise redis.exceptions.RedisClusterException(message) from cause

    return reachable(call)


def test_no_node_reachable_is_a_connection_error():
    with pytest.raises(redis.exceptions.ConnectionError, match="cannot be connected"):
        _raising(redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1"))()


def test_a_budget_spent_while_the_slot_table_is_read_again_stays_a_spent_budget():
    with pytest.raises(DeadlineExceeded):
        _raising(DeadlineExceeded("the request's time budget is spent"))()


def test_a_cluster_error_of_another_kind_is_not_taken_for_an_outage():
    with pytest.raises(redis.exceptions.RedisClusterException) as raised:
        _raising(None, "No way to dispatch this command to Redis Cluster")()
    assert not isinstance(raised.value, redis.exceptions.ConnectionError)


def test_an_answer_passes_through():
    assert reachable(lambda x: x + 1)(1) == 2
