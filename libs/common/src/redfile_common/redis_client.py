"""The one Redis client (one connection pool) of a process.

Built from ``REDIS_URL`` plus ``REDIS_USERNAME``/``REDIS_PASSWORD`` (for Redis
ACL users), with explicit socket timeouts and retry with exponential backoff
on connection errors and timeouts.

redis-py packs commands with hiredis when hiredis is installed; its packer
copies every value, and for multi-MiB chunk values the pure-Python packer was
faster here (1.1x at 1 MiB, 1.7x at 4 MiB, 2.6x at 8 MiB; see
docs/performance.md and bench/redis_packer.py), while for the many small
arguments of a script call hiredis's is about three times as fast.  So the
pool's connections pack a command with hiredis unless one of its values is
large (``LARGE_VALUE`` bytes), which goes through the pure-Python packer:
sent as its own buffer, not copied.

Every command (a pipeline or MULTI/EXEC counts once) is timed and reported to
an observer, ``observer(command, seconds, error_or_None)``: the app factory
passes ``CommonMetrics.redis_command``.  Tracing (OpenTelemetry) wraps the
same calls one level down, so each command is also a span.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import ExponentialBackoff
from redis.client import Pipeline
from redis.retry import Retry

from .product_metrics import command_label
from .settings import ServiceSettings

Observer = Callable[[str, float, "BaseException | None"], None]


class _Timed:
    observer: Observer | None = None

    def _timed(self, label: str, call, *args, **options):
        observer = self.observer
        if observer is None:
            return call(*args, **options)
        started = time.perf_counter()
        try:
            result = call(*args, **options)
        except Exception as exc:
            observer(label, time.perf_counter() - started, exc)
            raise
        observer(label, time.perf_counter() - started, None)
        return result


class InstrumentedPipeline(_Timed, Pipeline):
    """A pipeline whose ``execute`` (and WATCH-mode commands) report to the observer."""

    def execute(self, raise_on_error: bool = True):
        # redis-py types ``transaction`` as Redis's method; on a pipeline it is the MULTI flag
        multi = bool(self.transaction)
        return self._timed("MULTI" if multi else "PIPELINE", super().execute, raise_on_error)

    def immediate_execute_command(self, *args, **options):
        return self._timed(command_label(args), super().immediate_execute_command, *args, **options)


class InstrumentedRedis(_Timed, redis.Redis):
    """``redis.Redis`` reporting each command's duration and error to ``observer``."""

    def execute_command(self, *args, **options):
        return self._timed(command_label(args), super().execute_command, *args, **options)

    def pipeline(self, transaction: bool = True, shard_hint=None) -> InstrumentedPipeline:
        pipe = InstrumentedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.observer = self.observer
        return pipe


LARGE_VALUE = 16 * 1024
_BUFFERS = (bytes, bytearray, memoryview)


class HybridPacker:
    """hiredis's packer for a command of small arguments, the pure-Python one for a command with a large value.

    Both write the same bytes (``tests/unit/common/test_redis_packer.py``); they
    differ in cost only: hiredis's C packer is ~3x as fast on a script call's
    dozens of arguments and copies every value into one buffer, which for a
    multi-MiB chunk costs more than the pure-Python packer's separate buffers.
    """

    def __init__(self, python, hiredis) -> None:
        self.python = python
        self.hiredis = hiredis

    def pack(self, *args):
        for arg in args:
            if isinstance(arg, _BUFFERS) and len(arg) > LARGE_VALUE:
                return self.python.pack(*args)
        return self.hiredis.pack(*args)


@functools.cache
def _with_hybrid_packer(conn_cls: type) -> type:
    class HybridPackerConnection(conn_cls):
        def _construct_command_packer(self, packer):
            from redis.connection import HIREDIS_AVAILABLE, HiredisRespSerializer, PythonRespSerializer

            if packer is not None:
                return packer
            python = PythonRespSerializer(self._buffer_cutoff, self.encoder.encode)
            return HybridPacker(python, HiredisRespSerializer()) if HIREDIS_AVAILABLE else python

    HybridPackerConnection.__name__ = f"HybridPacker{conn_cls.__name__}"
    return HybridPackerConnection


def make_redis(settings: ServiceSettings, observer: Observer | None = None) -> redis.Redis:
    kwargs = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password
    client = InstrumentedRedis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), settings.redis_retries),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        # No PING before a command on an idle connection: redis-py retries that PING with the whole
        # retry policy, and then the command with it again, so a Redis that stopped answering held a
        # request about three times (1 + REDIS_RETRIES) x REDIS_SOCKET_TIMEOUT.  The command's own
        # retries already replace a dead connection (tests/integration/faults/test_redis_unreachable.py).
        health_check_interval=0,
        max_connections=settings.redis_max_connections,
        client_name=f"redfile-{settings.service_name}",
        **kwargs,
    )
    assert isinstance(client, InstrumentedRedis)  # from_url builds its own class; redis-py types it as Redis
    pool = client.connection_pool
    pool.connection_class = _with_hybrid_packer(pool.connection_class)
    client.observer = observer
    return client


T = TypeVar("T")


def transaction(client: redis.Redis, body: Callable[[Pipeline], T], *watches: str) -> T:
    """``client.transaction``: ``body`` runs again while a watched key changes under it; what it returns."""
    # redis-py types ``body`` as returning None and the result as the MULTI's replies, which value_from_callable changes
    return client.transaction(body, *watches, value_from_callable=True)  # type: ignore[arg-type,return-value]
