"""``/healthz`` (the process answers) and ``/readyz`` (Redis answers in bounded time)."""

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
        return {"status": "unavailable", "redis": "down"}, 503, {"Retry-After": "5"}
    return {"status": "ok", "redis": "up", "redis_ms": round((time.perf_counter() - started) * 1000, 2)}
