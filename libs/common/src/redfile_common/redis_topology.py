"""The client for each Redis topology (``REDIS_MODE``), and what acknowledging a write to replicas takes.

* ``standalone``: one server at ``REDIS_URL`` (``redis_client.make_standalone``).
* ``sentinel``: the primary the sentinels (``REDIS_SENTINELS``) name for ``REDIS_SENTINEL_MASTER``,
  asked again whenever a connection to it fails, so a failover is followed (redis-py's ``Sentinel``
  and its ``SentinelConnectionPool``; a primary demoted to a replica answers READONLY, which closes
  the connection and asks the sentinels again).
* ``cluster``: redis-py's ``RedisCluster``, which learns every node and slot from the node at
  ``REDIS_URL`` and follows MOVED and ASK itself.  Each node keeps its own pool.

Every topology's client keeps what ``redis_client`` gives a standalone one: each command through the
circuit breaker, within the request's time budget (the connections' timeouts cut to it), tried again
only when repeating it cannot do a thing twice, and reported to the observer.  redis-py's own retries
are off in every mode (``Retry(NoBackoff(), 0)``): the cluster client's would send a script again after
a timeout.  A MOVED, ASK or TRYAGAIN answer is not a failure: the cluster client sends the command to
the node that owns the slot, which is safe because the first node ran nothing.

What a write acknowledged to replicas takes (``REDIS_WAIT_REPLICAS``) is ``replicas``'s.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

import redis
from redis.backoff import NoBackoff
from redis.cluster import PRIMARY, ClusterNode, ClusterPipeline, RedisCluster
from redis.connection import Connection, parse_url
from redis.retry import Retry
from redis.sentinel import Sentinel

from .breaker import CircuitBreaker
from .deadline import DeadlineExceeded
from .product_metrics import command_label
from .redis_client import SAFE_TO_REPEAT, Guarded, InstrumentedRedis, Observer, budgeted_connection_class, make_standalone, record_write


def make_redis(settings, observer: Observer | None = None, breaker=None) -> redis.Redis:
    """The process's one client for ``REDIS_MODE``.  A cluster client is not a ``redis.Redis`` but answers the
    same commands, and is typed as one, as the services use it."""
    if settings.redis_mode == "cluster":
        return make_cluster(settings, observer, breaker)  # type: ignore[return-value]
    if settings.redis_mode == "sentinel":
        return make_sentinel(settings, observer, breaker)
    return make_standalone(settings, observer, breaker)


class NodeBreakers:
    """One circuit breaker per primary, like the process's: a dead primary fails fast the commands of its slots
    only, and the other primaries' keep working.  A command with no key goes through the process's breaker."""

    def _breaker_for(self, args: tuple) -> CircuitBreaker | None:
        if not args:
            return self.breaker  # type: ignore[attr-defined]  # the class this mixes into has it
        return self._breaker_of_slot(lambda: self.determine_slot(*args))  # type: ignore[attr-defined]

    def breaker_for_key(self, key: str) -> CircuitBreaker | None:
        """The breaker of the primary serving ``key``'s slot, which its commands go through (``breaker_guarding``)."""
        return self._breaker_of_slot(lambda: self.keyslot(key))  # type: ignore[attr-defined]

    def _breaker_of_slot(self, slot_of: Callable[[], int]) -> CircuitBreaker | None:
        base = self.breaker  # type: ignore[attr-defined]
        if base is None:
            return base
        try:
            node = self.nodes_manager.get_node_from_slot(slot_of())  # type: ignore[attr-defined]
        except Exception:  # no key, or a slot nobody serves now: the process's
            return base
        breakers: dict = self.__dict__.setdefault("_node_breakers", {})
        found = breakers.get(node.name)
        if found is None:
            found = breakers.setdefault(
                node.name,
                CircuitBreaker(failures=base.failures, reset_timeout=base.reset_timeout, on_change=base.on_change, clock=base.clock),
            )
        return found


def reachable(call):
    """``call``, with redis-py's "Redis Cluster cannot be connected" raised as the network error behind it.

    When a node does not answer, redis-py reads the slot table again from every node it knows; when none
    answers (the whole cluster down, or the request's budget spent meanwhile) it raises a
    ``RedisClusterException``, which is not a ``RedisError``: as the error that caused it, the breaker
    counts it, a repeatable command is tried again, and the request is a 503 like any Redis out of reach.
    """

    def inner(*args, **kwargs):
        try:
            return call(*args, **kwargs)
        except redis.exceptions.RedisClusterException as exc:
            cause = exc.__cause__
            if isinstance(cause, DeadlineExceeded):
                raise DeadlineExceeded(str(cause)) from exc
            if isinstance(cause, (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)):
                raise redis.exceptions.ConnectionError(str(exc)) from exc
            raise

    return inner


class FollowsAskToNewPrimaries:
    """An ASK to a primary that serves no slot yet is followed.

    redis-py follows an ASK by looking its target up by name in its node table (``get_node(node_name=...)``),
    which ``CLUSTER SLOTS`` fills with the nodes that serve a slot: a primary just added, importing its first
    slots, is not there, and redis-py 8.1 dereferences None (redis/redis-py#4015).  A name asked for alone and
    not known is answered with a primary node for that address, kept in the table as redis-py keeps a MOVED's
    new owner (``NodesManager.move_slot``); the next refresh of the table replaces it.
    """

    def get_node(self, host=None, port=None, node_name=None):
        node = super().get_node(host, port, node_name)  # type: ignore[misc]  # RedisCluster's, which this mixes into
        if node is not None or host or port or not node_name:
            return node
        address, _, number = node_name.rpartition(":")
        if not address or not number.isdigit():
            return None
        cache = self.nodes_manager.nodes_cache  # type: ignore[attr-defined]
        return cache.setdefault(node_name, ClusterNode(address, int(number), PRIMARY))  # one step: no lock needed


class InstrumentedClusterPipeline(FollowsAskToNewPrimaries, NodeBreakers, Guarded, ClusterPipeline):
    """A cluster pipeline whose ``execute`` goes through the breaker, the budget and the observer."""

    def execute(self, raise_on_error: bool = True):
        multi = bool(self.transaction)
        strategy = self._execution_strategy
        queued = list(strategy.command_queue)
        repeatable = not multi and all(command_label(c.args) in SAFE_TO_REPEAT for c in queued)
        watching = bool(getattr(strategy, "_watching", False))
        attempts = 0

        def attempt(raise_on_error: bool):
            nonlocal attempts
            attempts += 1
            if attempts > 1:  # redis-py empties the queue when execute ends: a retry sends what was asked
                if watching:
                    raise redis.exceptions.WatchError("the connection that held the WATCH failed")
                strategy.command_queue = list(queued)  # type: ignore[misc]  # the concrete strategies have a setter
            return reachable(ClusterPipeline.execute)(self, raise_on_error)

        first = queued[0].args if queued else ()  # the breaker of the first command's primary
        result = self._guarded("MULTI" if multi else "PIPELINE", repeatable, attempt, raise_on_error, breaker_for=first)
        for command in queued:
            record_write(command.args)
        return result


class InstrumentedCluster(FollowsAskToNewPrimaries, NodeBreakers, Guarded, RedisCluster):
    """``RedisCluster`` with the breakers, the budget and safe retries, reporting each command to ``observer``."""

    wait_replicas = 0

    def execute_command(self, *args, **kwargs):
        label = command_label(args)
        result = self._guarded(label, label in SAFE_TO_REPEAT, reachable(super().execute_command), *args, **kwargs)
        record_write(args)
        return result

    def pipeline(self, transaction=None, shard_hint=None) -> InstrumentedClusterPipeline:
        if shard_hint:
            raise redis.exceptions.RedisClusterException("shard_hint is deprecated in cluster mode")
        pipe = InstrumentedClusterPipeline(
            nodes_manager=self.nodes_manager,
            commands_parser=self.commands_parser,
            startup_nodes=self.nodes_manager.startup_nodes,  # type: ignore[arg-type]  # as redis-py's own pipeline() passes it
            result_callbacks=self.result_callbacks,
            cluster_response_callbacks=self.cluster_response_callbacks,
            read_from_replicas=self.read_from_replicas,
            load_balancing_strategy=self.load_balancing_strategy,
            reinitialize_steps=self.reinitialize_steps,
            retry=self.retry,
            lock=self._lock,
            transaction=transaction,
            event_dispatcher=self._event_dispatcher,
        )
        pipe.observer, pipe.breaker, pipe.retries = self.observer, self.breaker, self.retries
        pipe.__dict__["_node_breakers"] = self.__dict__.setdefault("_node_breakers", {})  # the client's, not its own
        return pipe


def _client_options(settings, timeout: float, connect_timeout: float, name: str | None = None) -> dict:
    """What a client of the topology's nodes connects with: the ACL user, its timeouts, no PING before a command
    on an idle connection (see ``redis_client.make_standalone``), and its name in CLIENT LIST."""
    options: dict = {"socket_timeout": timeout, "socket_connect_timeout": connect_timeout, "health_check_interval": 0}
    if name:
        options["client_name"] = name
    if settings.redis_username:
        options["username"] = settings.redis_username
    if settings.redis_password:
        options["password"] = settings.redis_password
    return options


def _sentinel(settings, timeout: float, options: dict) -> Sentinel:
    """The sentinels of ``REDIS_SENTINELS``, asked within ``timeout``; ``options`` for the primary they name, with TLS
    when ``REDIS_URL`` is ``rediss://``."""
    sentinels = [(host, int(port)) for host, _, port in (s.rpartition(":") for s in settings.redis_sentinels)]
    sentinel_options = {"socket_timeout": timeout, "socket_connect_timeout": timeout}
    if settings.redis_sentinel_password:
        sentinel_options["password"] = settings.redis_sentinel_password
    if settings.redis_url.startswith("rediss://"):
        options = options | {"ssl": True}
    return Sentinel(sentinels, sentinel_kwargs=sentinel_options, **options)


def make_cluster(settings, observer=None, breaker=None) -> InstrumentedCluster:
    url = parse_url(settings.redis_url)
    if url.pop("db", 0):
        raise ValueError("REDIS_URL: a Redis Cluster has database 0 only")
    # redis-py builds node pools from a URL's options only (from_url): the node's address goes as a plain
    # redis:// URL and every other option (TLS's connection class included, wrapped) beside it
    host, port = url.pop("host"), url.pop("port", 6379)
    connection_class = url.pop("connection_class", Connection)
    options = (
        _client_options(settings, settings.redis_socket_timeout, settings.redis_connect_timeout, f"redfile-{settings.service_name}") | url
    )
    client = InstrumentedCluster(
        url=f"redis://[{host}]:{port}" if ":" in host else f"redis://{host}:{port}",
        connection_class=budgeted_connection_class(connection_class),
        retry=Retry(NoBackoff(), 0),
        # each node's pool holds at most this many connections, as the one pool does in standalone mode
        max_connections=settings.redis_max_connections,
        **options,
    )
    client.observer, client.breaker, client.retries = observer, breaker, settings.redis_retries
    client.wait_replicas = settings.redis_wait_replicas
    return client


def make_sentinel(settings, observer=None, breaker=None) -> InstrumentedRedis:
    options = _client_options(settings, settings.redis_socket_timeout, settings.redis_connect_timeout, f"redfile-{settings.service_name}")
    client = _sentinel(settings, settings.redis_connect_timeout, options).master_for(
        settings.redis_sentinel_master,
        redis_class=InstrumentedRedis,
        retry=Retry(NoBackoff(), 0),
        max_connections=settings.redis_max_connections,
    )
    assert isinstance(client, InstrumentedRedis)
    pool = client.connection_pool
    pool.connection_class = budgeted_connection_class(pool.connection_class)
    client.observer, client.breaker, client.retries = observer, breaker, settings.redis_retries
    client.wait_replicas = settings.redis_wait_replicas
    return client


def _side_client(settings, timeout: float, max_connections: int, name: str | None = None):
    """A plain client of the cluster or the Sentinel primary for a task beside the requests (INFO, readiness):
    its own timeout, one try, a few connections."""
    options = _client_options(settings, timeout, timeout, name)
    if settings.redis_mode == "cluster":
        return RedisCluster.from_url(settings.redis_url, retry=Retry(NoBackoff(), 0), max_connections=max_connections, **options)
    manager = _sentinel(settings, timeout, options)
    return manager.master_for(settings.redis_sentinel_master, retry=Retry(NoBackoff(), 0), max_connections=max_connections)


# How one INFO field of every primary adds up to the cluster's: summed, the worst, or the oldest.
_SUMMED = ("used_memory", "maxmemory", "connected_clients", "rdb_changes_since_last_save")
_WORST_FLAG = {"loading": max, "aof_enabled": min, "aof_rewrite_in_progress": max}
_STATUSES = ("aof_last_write_status", "rdb_last_bgsave_status")


class _PrimariesInfo(Protocol):
    def info(self, *args: Any, **kwargs: Any) -> Any: ...


class ClusterInfo:
    """INFO of a cluster, read from every primary and added up as one server's (``redis_info`` reads it):
    memory and clients summed, a flag at its worst (loading if one loads, AOF on only if on everywhere),
    a status ``ok`` only if ok everywhere, the oldest snapshot; ``nodes`` holds each primary's memory."""

    def __init__(self, client: _PrimariesInfo) -> None:
        self.client = client

    def info(self) -> dict:
        per_node = self.client.info(target_nodes=RedisCluster.PRIMARIES)
        if not isinstance(per_node, dict) or not per_node:
            raise redis.exceptions.ConnectionError("no primary answered INFO")
        readings = list(per_node.values())
        merged = dict(readings[0])
        for field in _SUMMED:
            merged[field] = sum(int(r.get(field, 0) or 0) for r in readings)
        for field, worst in _WORST_FLAG.items():
            merged[field] = worst(int(r.get(field, 0) or 0) for r in readings)
        for field in _STATUSES:
            merged[field] = "ok" if all(r.get(field, "ok") == "ok" for r in readings) else "err"
        merged["rdb_last_save_time"] = min(int(r.get("rdb_last_save_time", 0) or 0) for r in readings)
        merged["nodes"] = {name: {"used_memory": int(r.get("used_memory", 0) or 0)} for name, r in sorted(per_node.items())}
        return merged


def info_client(settings):
    """A client for INFO only (``redis_info``) in ``REDIS_MODE``: short timeouts, no retries, few connections."""
    client = _side_client(settings, settings.redis_info_timeout, 2, f"redfile-{settings.service_name}-info")
    return ClusterInfo(client) if settings.redis_mode == "cluster" else client


class _ClusterReadiness:
    """``/readyz``'s ping of a cluster: the first primary (in random order) that answers within its share of
    ``READINESS_TIMEOUT``; one primary down leaves the others' slots served, so the pod stays ready."""

    def __init__(self, client: RedisCluster, timeout: float) -> None:
        self.client = client
        self.timeout = timeout

    def ping(self) -> bool:
        primaries = self.client.get_primaries()
        random.shuffle(primaries)
        failure: Exception = redis.exceptions.ConnectionError("the cluster has no primary")
        for node in primaries:
            try:
                return bool(self.client.ping(target_nodes=node))
            except (redis.exceptions.RedisError, OSError) as exc:
                failure = exc
        raise failure


def readiness_client(settings):
    """What ``/readyz`` pings in ``REDIS_MODE``: one try, within ``READINESS_TIMEOUT``."""
    client = _side_client(settings, settings.readiness_timeout, 4)
    return _ClusterReadiness(client, settings.readiness_timeout) if settings.redis_mode == "cluster" else client
