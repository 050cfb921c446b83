"""A pipeline tried again after a failure sends what it was asked, not nothing (found in review, issue 18).

redis-py empties a pipeline when ``execute`` ends, failed or not.  The client retried a read-only
pipeline after a timeout by calling ``execute`` again: on the empty pipeline, which answered ``[]``
without an error -- an upload's completion then found no chunk missing without looking.
"""

from __future__ import annotations

import pytest
import redis
from redis.cluster import RedisCluster

from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import make_settings


def failing_once(client, monkeypatch, error: Exception) -> list:
    """The next reply read on any of the client's connections (any node's) raises ``error``, once."""
    if isinstance(client, RedisCluster):
        connection_class = client.nodes_manager.connection_kwargs["connection_class"]
    else:
        connection_class = client.connection_pool.connection_class
    real = connection_class.read_response
    raised: list = []

    def read_response(self, *args, **kwargs):
        if not raised:
            raised.append(error)
            raise error
        return real(self, *args, **kwargs)

    monkeypatch.setattr(connection_class, "read_response", read_response)
    return raised


@pytest.mark.topology("standalone", "sentinel")  # the fixture's server; a cluster's pipeline: the test below
def test_a_read_pipeline_tried_again_answers_every_command(redis_url, monkeypatch, unique):
    client = make_redis(make_settings(ServiceSettings, redis_url, service_name="files", redis_retries=2))
    client.set(f"{unique}:a", "1")
    client.set(f"{unique}:b", "2")
    raised = failing_once(client, monkeypatch, redis.exceptions.TimeoutError("Timeout reading from socket"))
    with client.pipeline(transaction=False) as pipe:
        pipe.get(f"{unique}:a")
        pipe.get(f"{unique}:b")
        assert pipe.execute() == [b"1", b"2"]
    assert raised  # it did fail once, and was tried again


def test_a_cluster_read_pipeline_tried_again_answers_every_command(redis_cluster, monkeypatch, unique):
    client = make_redis(make_settings(ServiceSettings, redis_cluster.url, service_name="files", redis_retries=2))
    names = [f"{unique}:{i}" for i in range(6)]  # keys of several slots, on several primaries
    for i, name in enumerate(names):
        client.set(name, str(i))
    raised = failing_once(client, monkeypatch, redis.exceptions.TimeoutError("Timeout reading from socket"))
    with client.pipeline(transaction=False) as pipe:
        for name in names:
            pipe.get(name)
        assert pipe.execute() == [str(i).encode() for i in range(6)]
    assert raised
