"""Redis's own state (memory, persistence) from INFO, read off the request path.

``RedisInfo`` reads INFO through its own small client with a short timeout and
keeps each reading for ``REDIS_INFO_TTL`` seconds; while one thread reads,
the others take the last reading instead of waiting, so a slow or dead Redis
never holds up more than one caller, and never by more than
``REDIS_INFO_TIMEOUT``.

``RedisInfoCollector`` turns a reading into ``redfile_redis_*`` gauges.  It is
registered in the gunicorn master's metrics server (``metrics.start_metrics_server``),
so INFO is read when Prometheus scrapes, in the master, never in a worker that
serves requests.  ``GET /admin/stats`` shows the same reading (``summary``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, Protocol

import redis
import structlog
from prometheus_client.core import GaugeMetricFamily

from .settings import ServiceSettings

log = structlog.get_logger("redfile.redis_info")


def info_client(settings: ServiceSettings) -> InfoClient:
    """A client for INFO only: short timeouts, no retries, two connections at most (a cluster's: INFO of
    every primary, added up, ``redis_topology.ClusterInfo``)."""
    if settings.redis_mode != "standalone":
        from .redis_topology import info_client as topology_info_client

        return topology_info_client(settings)
    return redis.Redis.from_url(
        settings.redis_url,
        username=settings.redis_username or None,
        password=settings.redis_password or None,
        socket_timeout=settings.redis_info_timeout,
        socket_connect_timeout=settings.redis_info_timeout,
        max_connections=2,
        client_name=f"redfile-{settings.service_name}-info",
    )


class InfoClient(Protocol):
    """What ``RedisInfo`` asks of its client: INFO (a ``redis.Redis``)."""

    def info(self) -> Any: ...


class RedisInfo:
    """INFO at most once per ``ttl`` seconds; ``read()`` is None while Redis cannot be read."""

    def __init__(self, client: InfoClient, *, ttl: float = 5.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.client = client
        self.ttl = ttl
        self.clock = clock
        self._lock = threading.Lock()
        self._reading: dict | None = None
        self._read_at: float | None = None

    def read(self) -> dict | None:
        if self._fresh():
            return self._reading
        if not self._lock.acquire(blocking=False):
            return self._reading  # another thread is reading: do not queue behind it
        try:
            if not self._fresh():
                self._reading = self._fetch()
                self._read_at = self.clock()
            return self._reading
        finally:
            self._lock.release()

    def _fresh(self) -> bool:
        return self._read_at is not None and self.clock() - self._read_at < self.ttl

    def _fetch(self) -> dict | None:
        try:
            return self.client.info()
        except (redis.RedisError, OSError) as exc:
            log.warning("redis_info_unavailable", error_type=type(exc).__name__)
            return None


def _int(info: dict, key: str, default: int = 0) -> int:
    try:
        return int(info.get(key, default))
    except (TypeError, ValueError):
        return default


def summary(info: dict | None) -> dict[str, Any]:
    """The reading as ``GET /admin/stats`` shows it."""
    if info is None:
        return {"up": False}
    used, limit = _int(info, "used_memory"), _int(info, "maxmemory")
    last_save = _int(info, "rdb_last_save_time")
    return {
        "up": True,
        "version": str(info.get("redis_version", "")),
        "used_memory_bytes": used,
        "maxmemory_bytes": limit,
        "memory_used_ratio": round(used / limit, 4) if limit else None,
        "maxmemory_policy": str(info.get("maxmemory_policy", "")),
        "connected_clients": _int(info, "connected_clients"),
        "persistence": {
            "loading": bool(_int(info, "loading")),
            "aof_enabled": bool(_int(info, "aof_enabled")),
            "aof_last_write_ok": info.get("aof_last_write_status", "ok") == "ok",
            "aof_rewrite_in_progress": bool(_int(info, "aof_rewrite_in_progress")),
            "rdb_last_bgsave_ok": info.get("rdb_last_bgsave_status", "ok") == "ok",
            "rdb_changes_since_last_save": _int(info, "rdb_changes_since_last_save"),
            "rdb_last_save_time": datetime.fromtimestamp(last_save, UTC).strftime("%Y-%m-%dT%H:%M:%SZ") if last_save else None,
        },
    }


# name -> (help, value from an INFO reading)
GAUGES: dict[str, tuple[str, Callable[[dict], float]]] = {
    "redfile_redis_memory_used_bytes": ("Redis used_memory, bytes.", lambda i: _int(i, "used_memory")),
    "redfile_redis_memory_max_bytes": ("Redis maxmemory, bytes (0: no limit).", lambda i: _int(i, "maxmemory")),
    "redfile_redis_connected_clients": ("Clients connected to Redis.", lambda i: _int(i, "connected_clients")),
    "redfile_redis_loading": ("1 while Redis loads its data set at start.", lambda i: _int(i, "loading")),
    "redfile_redis_aof_enabled": ("1 when the append-only file is on.", lambda i: _int(i, "aof_enabled")),
    "redfile_redis_aof_last_write_ok": (
        "1 when the last AOF write succeeded.",
        lambda i: 1 if i.get("aof_last_write_status", "ok") == "ok" else 0,
    ),
    "redfile_redis_rdb_last_bgsave_ok": (
        "1 when the last RDB snapshot succeeded.",
        lambda i: 1 if i.get("rdb_last_bgsave_status", "ok") == "ok" else 0,
    ),
    "redfile_redis_rdb_changes_since_last_save": ("Writes since the last RDB snapshot.", lambda i: _int(i, "rdb_changes_since_last_save")),
    "redfile_redis_rdb_last_save_timestamp_seconds": ("Unix time of the last RDB snapshot.", lambda i: _int(i, "rdb_last_save_time")),
}
UP = "redfile_redis_up"
UP_HELP = "1 when this service's metrics server could read Redis INFO (within REDIS_INFO_TIMEOUT)."


class RedisInfoCollector:
    """A custom collector: the ``redfile_redis_*`` gauges from a ``RedisInfo``, labelled by service."""

    def __init__(self, info: RedisInfo, service: str) -> None:
        self.info = info
        self.service = service

    def describe(self):
        yield GaugeMetricFamily(UP, UP_HELP, labels=["service"])
        for name, (doc, _) in GAUGES.items():
            yield GaugeMetricFamily(name, doc, labels=["service"])

    def collect(self):
        reading = self.info.read()
        up = GaugeMetricFamily(UP, UP_HELP, labels=["service"])
        up.add_metric([self.service], 0 if reading is None else 1)
        yield up
        if reading is None:
            return
        for name, (doc, value) in GAUGES.items():
            family = GaugeMetricFamily(name, doc, labels=["service"])
            family.add_metric([self.service], value(reading))
            yield family
