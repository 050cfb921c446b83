"""``/healthz`` (the process answers) and ``/readyz`` (Redis answers within ``READINESS_TIMEOUT``, and the
process's breaker is not open; counted in ``redfile_readiness_checks_total{result}``, which the
ReadinessFailing alert watches).  The liveness probe's ``/healthz`` is the master's (``liveness``)."""

from __future__ import annotations

import time

import redis
from apiflask import APIBlueprint
from flask import current_app

from .breaker import OPEN, BreakerOpen

bp = APIBlueprint("health", __name__, enable_openapi=False)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    rf = current_app.extensions["redfile"]
    started = time.perf_counter()
    try:
        if rf.breaker.state == OPEN:  # this process takes Redis to be down: no need to wait to see it
            raise BreakerOpen(rf.breaker.retry_after())
        rf.readiness_redis.ping()
    except (redis.exceptions.RedisError, OSError):
        rf.metrics.readiness(False)
        return {"status": "unavailable", "redis": "down"}, 503, {"Retry-After": "5"}
    rf.metrics.readiness(True)
    return {"status": "ok", "redis": "up", "redis_ms": round((time.perf_counter() - started) * 1000, 2)}
