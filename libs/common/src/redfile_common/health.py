"""``/healthz`` (the process answers) and ``/readyz`` (Redis answers in bounded time; counted in
``redfile_readiness_checks_total{result}``, which the ReadinessFailing alert watches)."""

from __future__ import annotations

import time

import redis
from apiflask import APIBlueprint
from flask import current_app

bp = APIBlueprint("health", __name__, enable_openapi=False)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    rf = current_app.extensions["redfile"]
    started = time.perf_counter()
    try:
        rf.readiness_redis.ping()
    except (redis.exceptions.RedisError, OSError):
        rf.metrics.readiness(False)
        return {"status": "unavailable", "redis": "down"}, 503, {"Retry-After": "5"}
    rf.metrics.readiness(True)
    return {"status": "ok", "redis": "up", "redis_ms": round((time.perf_counter() - started) * 1000, 2)}
