"""What acknowledging a write to replicas takes (``REDIS_WAIT_REPLICAS``).

Redis's ``WAIT`` counts the replicas that acknowledged everything *its connection* wrote, and a pool
hands the next command any connection, so it is sent right behind a write of its own (a short-lived
marker in the same hash slot, so on the same primary): replicas that have that write have every write
the primary acknowledged before it.  The client remembers a key of each slot a request writes
(``record_write``, called by ``redis_client`` for every command it sends; ``wrote`` for what is sent
past it), and ``init_confirmation`` confirms them before a 2xx answer leaves.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from contextvars import ContextVar

import redis
from redis.cluster import RedisCluster, key_slot

from . import deadline
from .redis_commands import written_key

# Writes no client is told are stored: the audit trail is appended after the answer is decided.
_UNCONFIRMED = ("rf:audit",)
# The keys a request wrote, one per hash slot (``track_writes``): None while nothing is tracked.
_writes: ContextVar[dict[int, str] | None] = ContextVar("redfile_writes", default=None)


def track_writes() -> None:
    """From now on, remember a key of each slot this context's writes touch (``written``)."""
    _writes.set({})


def stop_tracking() -> None:
    _writes.set(None)


def written() -> list[str]:
    """A key of each hash slot written since ``track_writes`` (``redis_topology.confirm_replicas`` takes them)."""
    found = _writes.get()
    return list(found.values()) if found else []


def wrote(key: str | bytes) -> None:
    """Remember that ``key`` was written (a command sent past redis-py, as a staged chunk is, says so itself)."""
    found = _writes.get()
    if found is None:
        return
    text = key.decode(errors="replace") if isinstance(key, bytes) else str(key)
    if not text.startswith(_UNCONFIRMED):
        found.setdefault(key_slot(text.encode()), text)


def record_write(args: tuple) -> None:
    """Remember the key a command that was sent wrote (``redis_client`` calls it for every command)."""
    if _writes.get() is None:
        return
    key = written_key(args)
    if key is not None:
        wrote(key)


class ReplicasNotConfirmed(redis.exceptions.TimeoutError):
    """Fewer replicas than ``REDIS_WAIT_REPLICAS`` acknowledged a write within the request's budget: the
    write is on the primary (whole: each write is atomic), but a failover now could lose it.  A timeout,
    so the request answers 503 ``service_unavailable`` with ``Retry-After``; repeating it is safe."""


def client_timeout(client) -> float:
    """The configured socket timeout of ``client``'s connections."""
    if isinstance(client, RedisCluster):
        return float(client.nodes_manager.connection_kwargs.get("socket_timeout") or 5.0)
    return float(client.connection_pool.connection_kwargs.get("socket_timeout") or 5.0)


_TAGGED = re.compile(r"^([^{]*)\{([^}]+)\}")


def marker_of(key: str) -> str:
    """A key in ``key``'s hash slot, under its prefix (so the service's ACL covers it), for the marker write."""
    found = _TAGGED.match(key)
    if found:
        return f"{found.group(1)}{{{found.group(2)}}}:replicated"
    return f"{key}:{{{key}}}:replicated"  # the whole key is its slot's tag, and its prefix stays first


def confirm_replicas(client: redis.Redis | RedisCluster, keys: Iterable[str]) -> None:
    """Return once ``REDIS_WAIT_REPLICAS`` replicas of each primary holding one of ``keys`` have every write
    it acknowledged so far; ``ReplicasNotConfirmed`` when they do not within the request's budget.  A no-op
    when the setting is 0."""
    wanted = getattr(client, "wait_replicas", 0)
    if not wanted:
        return
    markers: dict[object, str] = {}  # one per primary
    for key in keys:
        marker = marker_of(key)
        node = client.get_node_from_key(marker) if isinstance(client, RedisCluster) else None
        markers.setdefault(node.name if node is not None else None, marker)
    for marker in markers.values():
        left = deadline.timeout(client_timeout(client))
        # WAIT answers when its time is up, well before the socket's timeout (the budget's rest) would cut it
        wait_ms = max(1, int((left - min(0.25, left / 4)) * 1000))  # WAIT 0 would wait for ever
        with client.pipeline(transaction=False) as pipe:
            pipe.set(marker, b"1", px=60_000)
            if isinstance(client, RedisCluster):
                pipe.execute_command("WAIT", wanted, wait_ms, target_nodes=client.get_node_from_key(marker))
            else:
                pipe.execute_command("WAIT", wanted, wait_ms)
            confirmed = pipe.execute()[-1]
        if int(confirmed) < wanted:
            raise ReplicasNotConfirmed(f"{confirmed} of {wanted} replicas confirmed the write in time")


def init_confirmation(app, client) -> None:
    """With ``REDIS_WAIT_REPLICAS``, a request that changes something answers 2xx only once the replicas have
    what it wrote (``confirm_replicas`` over a key of each slot it wrote); else a 503 (``ReplicasNotConfirmed``)."""
    if not getattr(client, "wait_replicas", 0):
        return
    from flask import request

    @app.before_request
    def _track() -> None:
        track_writes()

    @app.after_request
    def _confirm(response):
        try:
            if request.method not in ("GET", "HEAD", "OPTIONS") and 200 <= response.status_code < 300:
                keys = written()
                if keys:
                    confirm_replicas(client, keys)
        except redis.exceptions.RedisError as exc:
            # Flask answers an exception raised here 500 whatever its handlers: answer it as the view's would be
            return app.make_response(app.handle_user_exception(exc))
        finally:
            stop_tracking()
        return response
