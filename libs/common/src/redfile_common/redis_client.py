"""The one Redis client (one connection pool) of a process.

Built from ``REDIS_URL`` plus ``REDIS_USERNAME``/``REDIS_PASSWORD`` (for Redis
ACL users), with explicit socket timeouts and retry with exponential backoff
on connection errors and timeouts.

redis-py packs commands with hiredis when hiredis is installed; its packer
copies every value, and for multi-MiB chunk values the pure-Python packer was
faster here (1.1x at 1 MiB, 1.7x at 4 MiB, 2.6x at 8 MiB; see
docs/performance.md and bench/redis_packer.py).  So hiredis is not a
dependency, and the pool's connections use the pure-Python packer even if
hiredis happens to be installed.
"""

from __future__ import annotations

import functools

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .settings import ServiceSettings


@functools.cache
def _with_python_packer(conn_cls: type) -> type:
    class PythonPackerConnection(conn_cls):
        def _construct_command_packer(self, packer):
            from redis.connection import PythonRespSerializer

            return packer or PythonRespSerializer(self._buffer_cutoff, self.encoder.encode)

    PythonPackerConnection.__name__ = f"PythonPacker{conn_cls.__name__}"
    return PythonPackerConnection


def make_redis(settings: ServiceSettings) -> redis.Redis:
    kwargs = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password
    client = redis.Redis.from_url(
        settings.redis_url,
        socket_timeout=settings.redis_socket_timeout,
        socket_connect_timeout=settings.redis_connect_timeout,
        retry=Retry(ExponentialBackoff(cap=1.0, base=0.05), settings.redis_retries),
        retry_on_error=[redis.exceptions.ConnectionError, redis.exceptions.TimeoutError],
        health_check_interval=30,
        max_connections=settings.redis_max_connections,
        client_name=f"redfile-{settings.service_name}",
        **kwargs,
    )
    pool = client.connection_pool
    pool.connection_class = _with_python_packer(pool.connection_class)
    return client
