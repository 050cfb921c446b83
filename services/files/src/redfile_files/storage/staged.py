"""A chunk's staging ``SET``, its value sent piece by piece as the request body arrives."""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

import redis
from redis.cluster import RedisCluster

from redfile_common.breaker import BreakerOpen
from redfile_common.deadline import DeadlineExceeded
from redfile_common.redis_client import HUNG_AFTER, breaker_guarding
from redfile_common.replicas import wrote

if TYPE_CHECKING:
    from redis.connection import Connection

STAGING_TTL = 60  # seconds a staged chunk outlives a script that never ran
_NETWORK_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError)


def pool_for(client, key: str):
    """The pool whose connections reach ``key``: the client's one, or on a cluster that of the node owning its slot
    (the slot table as the client knows it; a slot that moved since answers MOVED: the request's 503, and the
    client's table is read again, ``StagedChunk.read_end``)."""
    if isinstance(client, RedisCluster):
        return client.get_redis_connection(client.get_node_from_key(key)).connection_pool
    return client.connection_pool


def unlink_quietly(client: redis.Redis, key: str) -> None:
    """Remove a staging key now, if Redis answers; if not, its TTL removes it anyway."""
    with contextlib.suppress(redis.exceptions.RedisError):
        client.unlink(key)


class StagedChunk:
    """A chunk's staging ``SET`` whose value is sent piece by piece while the request body arrives.

    redis-py sends a command only whole, so this writes the RESP itself on a
    connection of the client's pool: the header with the value's length, each
    piece as it is given, then ``EX`` (and, with ``finish``, the chunk's script
    right behind it) and the reply.  Redis creates the key only when the whole
    command has arrived; if anything goes wrong before that (the body ends
    early, a piece is too many, a checksum does not match, an exception), the
    connection is closed instead, Redis drops the partial command, and nothing
    is stored.  Reported to the client's observer as a ``SET`` and an
    ``EVALSHA``, and their keys to the request's write tracking
    (``replicas.wrote``: its 2xx waits for the replicas with
    ``REDIS_WAIT_REPLICAS``); neither gets an OpenTelemetry span, and neither
    is retried by redis-py's retry policy: a connection lost here is the
    client's 503, and its retry of the chunk is a no-op or stores it.

    It goes through the circuit breaker guarding its key (``redis_client.breaker_guarding``: the process's,
    or on a cluster that of the primary serving the key's slot) as a command on the key does: an open
    breaker refuses it (``BreakerOpen``) before it takes a connection, and stops it between two pieces
    once it opens meanwhile (unless this ``SET`` is the probe); its outcome counts as a command's
    (an answer closes, a timeout of ``HUNG_AFTER`` or more or a lost connection counts a failure).
    """

    def __init__(self, client: redis.Redis, key: str, size: int, ttl: int = STAGING_TTL) -> None:
        self.client = client
        self.key = key
        self.size = size
        self.ttl = ttl
        self.sent = 0
        self._conn: Connection | None = None
        self._ending: tuple | None = None  # (script, keys, args) once send_end sent the SET's end
        self._sent_at = 0.0  # when it did
        self._breaker = breaker_guarding(client, key)
        self._probe = False  # this SET is the breaker's probe
        self._waited = 0.0  # how long the send or read that failed waited

    def __enter__(self) -> StagedChunk:
        key = self.key.encode()
        self._started = time.perf_counter()
        if self._breaker is not None:
            self._probe = self._breaker.before()  # BreakerOpen: no connection taken, nothing sent
        try:
            self._pool = pool_for(self.client, self.key)
            self._conn = conn = self._io(self._pool.get_connection)
        except BaseException as error:
            self._judge(error, answered=False)
            raise
        try:
            header = b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, self.size)
            self._io(conn.send_packed_command, [header], check_health=False)
        except BaseException as error:
            self._close(broken=True, error=error)
            raise
        return self

    def write(self, piece) -> None:
        if self.sent + len(piece) > self.size:
            raise ValueError("more bytes than the staged chunk's size")
        assert self._conn is not None, "write after the staged chunk was closed"
        if self._breaker is not None:
            self._breaker.check(self._probe)  # opened meanwhile: stop here (the caller's exit closes the SET unfinished)
        self._io(self._conn.send_packed_command, [piece], check_health=False)
        self.sent += len(piece)

    def _io(self, call, *args, **kwargs):
        """One connect, send or read; a network error notes how long it waited (``_judge``)."""
        started = time.monotonic()
        try:
            return call(*args, **kwargs)
        except _NETWORK_ERRORS:
            self._waited = time.monotonic() - started
            raise

    def _judge(self, error: BaseException | None, *, answered: bool) -> None:
        """Tell the breaker how Redis did, as ``redis_client`` does for a command: it answered (a reply, an error
        reply), it hung or was lost (a failure), or it was asked nothing we can judge by (the body ended, a checksum
        did not match, our own refusals, a timeout cut short by a budget nearly spent)."""
        breaker, probe, self._probe = self._breaker, self._probe, False
        if breaker is None:
            return
        if answered or isinstance(error, redis.exceptions.ResponseError):
            breaker.succeeded(probe)
        elif (
            isinstance(error, _NETWORK_ERRORS)
            and not isinstance(error, (BreakerOpen, DeadlineExceeded))
            and not (isinstance(error, redis.exceptions.TimeoutError) and self._waited < HUNG_AFTER)
        ):
            breaker.failed(probe)
        else:
            breaker.released(probe)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._conn is None:
            return  # finished (``finish``)
        if exc_type is not None or self.sent != self.size:
            self._close(broken=True, error=exc)
            return
        self.finish()

    def abandon(self) -> None:
        """Give the ``SET`` up: unfinished, its connection is closed and Redis stores nothing; its end sent
        (``send_end``) and the replies not read, they are dropped with the connection, and whether Redis ran
        the ``SET`` and its script is not known here (the script checks what it changes); finished: no-op."""
        self._close(broken=True)

    def finish(self, script=None, keys=(), args=()):
        """End the ``SET``; with ``script``, send its ``EVALSHA`` right behind it on the same connection.

        One round trip for both instead of two.  Redis runs the script after the ``SET``; a ``SET`` Redis
        refused leaves no staging key, which the script finds (``staging_lost``)
        before it changes anything.  Returns the script's reply, or runs it
        again through redis-py (``SCRIPT LOAD`` and all) when Redis did not
        have it cached (``NOSCRIPT``)."""
        self.send_end(script, keys, args)
        return self.read_end()

    def send_end(self, script=None, keys=(), args=()) -> None:
        """``finish``'s first half: send the ``SET``'s end (and the script) without waiting for the replies,
        which ``read_end`` reads; meanwhile the connection is this chunk's, and ``abandon`` closes it."""
        conn = self._conn
        if conn is None or self._ending is not None:
            raise RuntimeError("the staged chunk is already finished or closed")
        if self.sent != self.size:
            self._close(broken=True)
            raise ValueError("the staged chunk has not had all its bytes")
        ttl = str(self.ttl).encode()
        tail = [b"\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl), ttl)]
        if script is not None:
            tail += conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
        try:
            if self._breaker is not None:
                self._breaker.check(self._probe)
        except BreakerOpen as error:
            self._close(broken=True, error=error)
            raise
        self._ending = (script, keys, args)
        # sent past redis-py, so named here: a request's 2xx waits until replicas have them (REDIS_WAIT_REPLICAS)
        for key in (self.key, *keys[:1]):
            wrote(key)
        try:
            self._io(conn.send_packed_command, tail, check_health=False)
        except BaseException as error:
            self._close(broken=True, error=error)
            raise
        self._sent_at = time.perf_counter()

    def read_end(self):
        """``finish``'s second half: the ``SET``'s reply, then the script's (see ``finish``).  Read later than
        sent, the replies may have come long before: the time between is not reported as the commands'."""
        conn, ending = self._conn, self._ending
        if conn is None or ending is None:
            raise RuntimeError("the staged chunk's end was not sent, or is already read")
        script, keys, args = ending
        script_started = time.perf_counter()
        self._started += script_started - self._sent_at
        try:
            reply = self._io(conn.read_response)
        except BaseException as error:  # a refused SET too: its script's reply is still on the way, so the connection goes
            self._close(broken=True, error=error)
            if isinstance(error, redis.exceptions.MovedError) and isinstance(self.client, RedisCluster):
                # a slot moved (resharding): the whole table is read again, so the client's retry, and the next chunk
                # of any slot moved so far, goes to the new owner
                self.client.nodes_manager.initialize()
            raise
        if reply not in (b"OK", "OK", True):
            unexpected = redis.exceptions.ResponseError(f"unexpected reply to a staged SET: {reply!r}")
            self._close(broken=True, error=unexpected)
            raise unexpected
        if script is None:
            self._close(broken=False)
            return None
        self._close(broken=False, release=False)  # the SET is done; the connection waits for the script's reply
        try:
            result = self._io(conn.read_response)
        except redis.exceptions.ResponseError as error:  # a whole error reply: the connection is in step
            self._release(conn, broken=False)
            self._observe("EVALSHA", script_started, error)
            self._judge(error, answered=True)
            if isinstance(error, redis.exceptions.NoScriptError):  # Redis restarted or flushed its scripts
                self.client.script_load(script.script)
                return script(keys=list(keys), args=list(args))
            raise
        except BaseException as error:
            self._release(conn, broken=True)
            self._observe("EVALSHA", script_started, error)
            self._judge(error, answered=False)
            raise
        self._release(conn, broken=False)
        self._observe("EVALSHA", script_started, None)
        self._judge(None, answered=True)
        return result

    def _observe(self, command: str, started: float, error: BaseException | None) -> None:
        """Report ``command`` to the client's observer; an error counts only if it is Redis's or the connection's
        (a checksum mismatch that leaves the SET unfinished is the client's, not Redis's)."""
        observer = getattr(self.client, "observer", None)
        if observer is not None:
            counted = error if isinstance(error, (redis.exceptions.RedisError, OSError)) else None
            observer(command, time.perf_counter() - started, counted)

    def _release(self, conn, *, broken: bool) -> None:
        if broken:
            conn.disconnect()  # Redis drops a command it did not receive whole; a reply not read is never read
        self._pool.release(conn)

    def _close(self, *, broken: bool, error: BaseException | None = None, release: bool = True) -> None:
        """The SET is over (done, or abandoned with ``broken``): report it; return the connection unless ``release``
        is False (``finish`` still reads the script's reply on it)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if release:
            self._release(conn, broken=broken)
        self._observe("SET", self._started, error)
        self._judge(error, answered=not broken)
