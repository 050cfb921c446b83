"""The one Redis client (one connection pool) of a process.

Built from ``REDIS_URL`` plus ``REDIS_USERNAME``/``REDIS_PASSWORD`` (for Redis
ACL users), with explicit socket timeouts and retry with exponential backoff
on connection errors and timeouts.

redis-py packs commands with hiredis when hiredis is installed; its packer
copies every value, and for multi-MiB chunk values the pure-Python packer was
faster here (see docs/performance.md), so hiredis is deliberately not a
dependency.
"""

from __future__ import annotations

import redis
from redis.backoff import ExponentialBackoff
from redis.retry import Retry

from .settings import ServiceSettings


def make_redis(settings: ServiceSettings) -> redis.Redis:
    kwargs = {}
    if settings.redis_username:
        kwargs["username"] = settings.redis_username
    if settings.redis_password:
        kwargs["password"] = settings.redis_password
    return redis.Redis.from_url(
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
