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

Every command waits at most what the request's time budget has left (``deadline``): its connect,
send and read timeouts are cut to it.  A wait that fails spends all it waited; one that is
answered only its time beyond ``HUNG_AFTER``, so many quick commands never use a budget up.  A command goes through the
process's circuit breaker (``breaker``), which fails it at once while Redis is taken to be down.
A failed command is tried again (with exponential backoff, at most ``REDIS_RETRIES`` times) only
while the budget lasts, and only when repeating it cannot do a thing twice: the connection was never
made, or the command is in ``SAFE_TO_REPEAT``.  A script (EVALSHA, EVAL, FCALL), a MULTI/EXEC or
any other write that timed out may have run, so it is never sent again: the request answers 503
and the client, which knows what it asked for, decides.

Every command (a pipeline or MULTI/EXEC counts once) is timed and reported to
an observer, ``observer(command, seconds, error_or_None)``: the app factory
passes ``CommonMetrics.redis_command``.  Tracing (OpenTelemetry) wraps the
same calls one level down, so each command is also a span.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable
from typing import TypeVar

import redis
from redis.backoff import ExponentialBackoff, NoBackoff
from redis.client import Pipeline
from redis.retry import Retry

from . import deadline
from .breaker import BreakerOpen, CircuitBreaker
from .product_metrics import command_label
from .redis_commands import SAFE_TO_REPEAT
from .replicas import record_write
from .settings import ServiceSettings

Observer = Callable[[str, float, "BaseException | None"], None]


# A timeout counts against Redis (the breaker) only after this long: Redis answers in milliseconds, but a
# request whose budget was nearly spent may time out sooner through no fault of Redis.
HUNG_AFTER = 0.25
_NETWORK_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def never_sent(exc: BaseException) -> bool:
    """Did the command fail before reaching Redis?  A refused or timed-out connect, or our own refusals."""
    return isinstance(exc, (BreakerOpen, deadline.DeadlineExceeded)) or "connecting to" in str(exc)


class Guarded:
    """Breaker, budget and retries around one command (or one pipeline)."""

    observer: Observer | None = None
    breaker: CircuitBreaker | None = None
    retries: int = 0
    backoff = ExponentialBackoff(cap=1.0, base=0.05)

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

    def _breaker_for(self, args: tuple) -> CircuitBreaker | None:
        """The breaker a command goes through: the process's (a cluster client: the node's, ``redis_topology``)."""
        return self.breaker

    def breaker_for_key(self, key: str) -> CircuitBreaker | None:
        """The breaker that guards commands on ``key``: the process's (a cluster client: the node's)."""
        return self.breaker

    def _guarded(self, label: str, repeatable: bool, call, *args, breaker_for: tuple = (), **options):
        failures = 0
        breaker = self._breaker_for(breaker_for or args)
        while True:
            # a spent budget stops here: a cluster client would take the command's timeout for a failed node, drop
            # the node's idle connections and read the slot table again
            deadline.check()
            probe = breaker.before() if breaker is not None else False  # BreakerOpen: not sent
            started = time.monotonic()
            try:
                result = self._timed(label, call, *args, **options)
            except _NETWORK_ERRORS as exc:
                waited = time.monotonic() - started  # spent from the budget by the connection (_Spending)
                if breaker is not None:
                    if isinstance(exc, deadline.DeadlineExceeded) or (
                        isinstance(exc, redis.exceptions.TimeoutError) and waited < HUNG_AFTER
                    ):
                        breaker.released(probe)  # nothing asked of Redis, or a budget nearly spent: no sign of a hang
                    else:
                        breaker.failed(probe)
                failures += 1
                if isinstance(exc, deadline.DeadlineExceeded) or failures > self.retries:
                    raise
                if not (repeatable or never_sent(exc)):
                    raise  # it may have run: a script or a write is not sent twice
                self._pause(failures)
                continue
            except redis.exceptions.ResponseError:
                if breaker is not None:
                    breaker.succeeded(probe)  # Redis answered
                raise
            except BaseException:
                if breaker is not None:
                    breaker.released(probe)
                raise
            if breaker is not None:
                breaker.succeeded(probe)
            return result

    def _pause(self, failures: int) -> None:
        pause = self.backoff.compute(failures)
        budget = deadline.current()
        if budget is not None:
            if budget.renewing or budget.left() <= pause:  # a stream's read is not tried again: the client resumes
                raise deadline.DeadlineExceeded("the request's time budget is spent")
            budget.spend(pause)
        time.sleep(pause)


def breaker_guarding(client, key: str) -> CircuitBreaker | None:
    """The circuit breaker that guards commands on ``key``, for code that talks to Redis past the client's commands
    (a staged chunk): the process's, or on a cluster that of the primary serving the key's slot; None for a client
    without breakers."""
    return client.breaker_for_key(key) if isinstance(client, Guarded) else None


class InstrumentedPipeline(Guarded, Pipeline):
    """A pipeline whose ``execute`` (and WATCH-mode commands) go through the breaker, the budget and the observer."""

    def execute(self, raise_on_error: bool = True):
        # redis-py types ``transaction`` as Redis's method; on a pipeline it is the MULTI flag
        multi = bool(self.transaction)
        repeatable = not multi and all(command_label(args) in SAFE_TO_REPEAT for args, _ in self.command_stack)
        # redis-py's execute empties the pipeline when it ends, failed or not: a retry re-queues what was asked,
        # else it sends nothing and answers [] (no results, no error).  A WATCH lived on the connection that
        # failed: the transaction is not retried without it but refused as a WatchError (its caller starts over).
        stack, scripts, watching = list(self.command_stack), set(self.scripts), self.watching
        attempts = 0

        def attempt(raise_on_error: bool):
            nonlocal attempts
            attempts += 1
            if attempts > 1:
                if watching:
                    raise redis.exceptions.WatchError("the connection that held the WATCH failed")
                self.command_stack, self.scripts = list(stack), set(scripts)
            return Pipeline.execute(self, raise_on_error)

        result = self._guarded("MULTI" if multi else "PIPELINE", repeatable, attempt, raise_on_error)
        for args, _ in stack:
            record_write(args)
        return result

    def immediate_execute_command(self, *args, **options):
        # WATCH mode: a new connection would lose the WATCH, so never again
        return self._guarded(command_label(args), False, super().immediate_execute_command, *args, **options)


class InstrumentedRedis(Guarded, redis.Redis):
    """``redis.Redis`` with the breaker, the budget and safe retries, reporting each command to ``observer``."""

    wait_replicas = 0  # REDIS_WAIT_REPLICAS (redis_topology.confirm_replicas)

    def execute_command(self, *args, **options):
        label = command_label(args)
        result = self._guarded(label, label in SAFE_TO_REPEAT, super().execute_command, *args, **options)
        record_write(args)
        return result

    def pipeline(self, transaction: bool = True, shard_hint=None) -> InstrumentedPipeline:
        pipe = InstrumentedPipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)
        pipe.observer = self.observer
        pipe.breaker = self.breaker
        pipe.retries = self.retries
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


class _Spending:
    """Spends a wait on the socket from the request's budget: all of it when it failed, and when Redis
    answered (a reply, or an error reply) only its time beyond ``HUNG_AFTER``, so a long job of quick
    commands (a consistency check, a big file's completion) is never cut short.  On the connection, so
    every wait counts: a command's, a pipeline's, a staged chunk's (files storage) that uses the
    connection directly."""

    _depth = threading.local()  # a send that connects first nests a connect and a handshake: the outermost counts

    def __enter__(self) -> None:
        self.outer = not getattr(self._depth, "n", 0)
        self._depth.n = getattr(self._depth, "n", 0) + 1
        self.started = time.monotonic()

    def __exit__(self, exc_type, exc, tb) -> None:
        self._depth.n -= 1
        if self.outer:
            waited = time.monotonic() - self.started
            answered = exc_type is None or issubclass(exc_type, redis.exceptions.ResponseError)
            deadline.spend(max(0.0, waited - HUNG_AFTER) if answered else waited)


@functools.cache
def budgeted_connection_class(conn_cls: type) -> type:
    class HybridPackerConnection(conn_cls):
        """The hybrid packer, and every connect, send and read cut to what the request's budget has left."""

        def _construct_command_packer(self, packer):
            from redis.connection import HIREDIS_AVAILABLE, HiredisRespSerializer, PythonRespSerializer

            if packer is not None:
                return packer
            python = PythonRespSerializer(self._buffer_cutoff, self.encoder.encode)
            return HybridPacker(python, HiredisRespSerializer()) if HIREDIS_AVAILABLE else python

        def _connect(self):
            configured = self.socket_connect_timeout  # type: ignore[has-type]  # redis-py sets it in __init__, untyped
            self.socket_connect_timeout = deadline.timeout(configured)
            try:
                with _Spending():
                    return super()._connect()
            finally:
                self.socket_connect_timeout = configured

        def send_packed_command(self, command, check_health=True):
            # the socket's timeout holds for this send and the reads of its replies (the parser's default)
            if self._sock is not None:
                cut = deadline.timeout(self.socket_timeout)
                with contextlib.suppress(OSError):  # a socket already closed: the send below fails as redis-py reports it
                    self._sock.settimeout(cut)
            with _Spending():
                return super().send_packed_command(command, check_health)

        def read_response(self, *args, **kwargs):
            with _Spending():
                return super().read_response(*args, **kwargs)

    HybridPackerConnection.__name__ = f"HybridPacker{conn_cls.__name__}"
    return HybridPackerConnection


def make_standalone(settings: ServiceSettings, observer: Observer | None = None, breaker: CircuitBreaker | None = None) -> redis.Redis:
    """The client of one server at ``REDIS_URL`` (``redis_topology.make_redis`` chooses by ``REDIS_MODE``)."""
    kwargs = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password
    client = InstrumentedRedis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        # redis-py's own retry would send anything again, a script that ran included: Guarded retries instead
        retry=Retry(NoBackoff(), 0),
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
    pool.connection_class = budgeted_connection_class(pool.connection_class)
    client.observer = observer
    client.breaker = breaker
    client.retries = settings.redis_retries
    client.wait_replicas = settings.redis_wait_replicas
    return client


T = TypeVar("T")


def transaction(client: redis.Redis, body: Callable[[Pipeline], T], *watches: str) -> T:
    """``client.transaction``: ``body`` runs again while a watched key changes under it; what it returns."""
    # redis-py types ``body`` as returning None and the result as the MULTI's replies, which value_from_callable changes
    return client.transaction(body, *watches, value_from_callable=True)  # type: ignore[arg-type,return-value]
