"""Every node of the cluster gone: a request is a 503 the client may retry, never a 500.

When a command's node does not answer, redis-py reads the slot table again from any node it knows; when
none answers (or the request's budget is spent while it tries) it raises ``RedisClusterException``
("Redis Cluster cannot be connected"), which is not one of redis-py's ``RedisError``s.  Found by the
integration suite on a cluster under load: a share answered 500.
"""

from __future__ import annotations

from redfile_auth import create_app
from redfile_dev.testing import settings_overrides


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
