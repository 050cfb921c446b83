"""A cluster client when nodes do not answer, or the request has no time left to ask them.

Every node of the cluster gone: a request is a 503 the client may retry, never a 500.

When a command's node does not answer, redis-py reads the slot table again from any node it knows; when
none answers (or the request's budget is spent while it tries) it raises ``RedisClusterException``
("Redis Cluster cannot be connected"), which is not one of redis-py's ``RedisError``s.  Found by the
integration suite on a cluster under load: a share answered 500.
"""

from __future__ import annotations

import pytest
from redis.cluster import RedisCluster

from redfile_auth import create_app
from redfile_common import deadline
from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import connections_made, make_settings, settings_overrides


def test_a_cluster_with_no_node_answering_is_a_503_with_retry_after(redis_cluster):
    options = {"redis_mode": "cluster", "admin_users": "admin", "admin_password": "admin-password-1", "argon2_memory_kib": 1024}
    app = create_app(**settings_overrides(redis_cluster.url, **options))
    client = app.test_client()
    body = {"username": "nobody", "password": "not-the-password-1"}
    assert client.post("/auth/login", json=body).status_code == 401  # the cluster answers
    for node in list(redis_cluster.nodes):
        redis_cluster.kill(node)

    answer = client.post("/auth/login", json=body)

    assert answer.status_code == 503, answer.get_json()
    assert answer.get_json()["error"]["code"] == "service_unavailable"
    assert int(answer.headers["Retry-After"]) >= 1


def test_a_spent_budget_leaves_the_cluster_clients_connections_and_slot_table_alone(redis_cluster):
    # redis-py takes any timeout of a command for a failed node: it drops the node's idle connections and reads
    # the slot table again, so one slow request under load would cost every other request its connections
    client = make_redis(make_settings(ServiceSettings, redis_cluster.url, service_name="files"))
    assert isinstance(client, RedisCluster)
    keys = [f"files:{{k{n}}}:x" for n in range(30)]  # on every primary
    for key in keys:
        client.set(key, b"v")
    made, table = connections_made(client), dict(client.nodes_manager.slots_cache)
    budget = deadline.begin(1.0)
    try:
        budget.spend(2.0)
        for key in keys:
            with pytest.raises(deadline.DeadlineExceeded):
                client.get(key)
        pipe = client.pipeline(transaction=False)
        pipe.get(keys[0])
        with pytest.raises(deadline.DeadlineExceeded):
            pipe.execute()
    finally:
        deadline.end()
    assert [client.get(key) for key in keys] == [b"v"] * len(keys)
    assert connections_made(client) == made
    assert client.nodes_manager.slots_cache == table
