"""A slot migrating to a primary that serves no slot yet (the first slots of a node just added): the services'
cluster client follows the ASK to it, for a command, a script and a pipeline.

redis-py 8.1 looks the ASK's target up in its node table, built from ``CLUSTER SLOTS``, which lists only nodes
that serve a slot, and dereferences None (an ``AttributeError``: redis/redis-py#4015, #2432), which a service
would answer 500.  ``redfile_common.redis_topology`` gives the client the node to follow.  A transaction
(``MULTI``) is not followed by redis-py at all: it raises the redirect, which the services answer 503 with
``Retry-After: 1``, until the slot has moved.
"""

from __future__ import annotations

import redis
from redis.cluster import RedisCluster

from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import make_settings

KEY = "files:{ask-me}:k"


def _migrating_to_a_new_primary(redis_cluster):
    """``KEY``'s slot marked migrating from its owner to a fresh primary with no slot: (a client of that primary,
    a function that ends the migration, handing the slot to the new primary everywhere)."""
    port = RedisCluster.from_url(redis_cluster.url).get_node_from_key(KEY).port
    owner = next(p for p in redis_cluster.primaries() if p.port == port)
    new = redis_cluster.add_primary()
    slot = RedisCluster.from_url(redis_cluster.url).keyslot(KEY)
    redis.Redis(port=new.port).execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", redis_cluster.node_id(owner))
    redis.Redis(port=owner.port).execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", redis_cluster.node_id(new))

    def hand_over() -> None:  # the slot holds no key on its owner: nothing to MIGRATE
        for node in [new, *(p for p in redis_cluster.primaries() if p.port != new.port)]:
            redis.Redis(port=node.port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", redis_cluster.node_id(new))

    return redis.Redis(port=new.port, single_connection_client=True), hand_over


def _asking_get(new: redis.Redis, key: str):
    new.execute_command("ASKING")
    return new.get(key)


def test_an_ask_to_a_primary_with_no_slot_yet_is_followed(redis_cluster):
    client = make_redis(make_settings(ServiceSettings, redis_cluster.url, service_name="files"))
    assert client.ping()  # the client's node table is built before the new primary exists
    new, _ = _migrating_to_a_new_primary(redis_cluster)

    assert client.set(KEY, b"v1")  # absent on the migrating owner: ASK to the new primary
    assert _asking_get(new, KEY) == b"v1"
    assert client.get(KEY) == b"v1"
    assert client.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, KEY, b"v2") == b"OK"
    assert _asking_get(new, KEY) == b"v2"
    pipe = client.pipeline(transaction=False)
    pipe.set(KEY, b"v3")
    pipe.get(KEY)
    assert pipe.execute() == [True, b"v3"]
    assert _asking_get(new, KEY) == b"v3"


def _transaction(client) -> list | str:
    pipe = client.pipeline(transaction=True)
    pipe.set(KEY, b"v4")
    try:
        return pipe.execute()
    except (redis.exceptions.AskError, redis.exceptions.MovedError) as exc:  # the services' 503, Retry-After: 1
        return type(exc).__name__


def test_a_transaction_on_a_slot_moving_to_a_new_primary_is_a_redirect_until_the_slot_has_moved(redis_cluster):
    client = make_redis(make_settings(ServiceSettings, redis_cluster.url, service_name="files"))
    assert client.ping()
    new, hand_over = _migrating_to_a_new_primary(redis_cluster)
    # redis-py points the slot at the ASK's target, which sends it back (MOVED): redirects, never an AttributeError
    assert {_transaction(client) for _ in range(3)} <= {"AskError", "MovedError"}
    hand_over()
    assert _transaction(client) == [b"OK"]  # a transaction's replies are not parsed: EXEC's own
    assert new.get(KEY) == b"v4"
