"""``/healthz`` (the process answers) and ``/readyz`` (Redis answers within ``READINESS_TIMEOUT``, and the
process's breaker is not open; when the breaker's probe is due, the readiness ping is the probe; counted in ``redfile_readiness_checks_total{result}``, which the
ReadinessFailing alert watches).  The liveness probe's ``/healthz`` is the master's (``liveness``)."""

from __future__ import annotations

import time

import redis
from apiflask import APIBlueprint
from flask import current_app

from .breaker import BreakerOpen

bp = APIBlueprint("health", __name__, enable_openapi=False)


@bp.get("/healthz")
def healthz():
    return {"status": "ok"}


@bp.get("/readyz")
def readyz():
    rf = current_app.extensions["redfile"]
    started = time.perf_counter()
    probe = False
    try:
        # While the breaker is open: 503 at once.  When a probe is due, this ping is it, so a pod that
        # gets no traffic (it is not ready) still finds out that Redis is back.
        probe = rf.breaker.before()
        rf.readiness_redis.ping()
    except (redis.exceptions.RedisError, OSError) as exc:
        if probe and not isinstance(exc, BreakerOpen):
            rf.breaker.failed(True)
        rf.metrics.readiness(False)
        return {"status": "unavailable", "redis": "down"}, 503, {"Retry-After": "5"}
    if probe:
        rf.breaker.succeeded(True)
    rf.metrics.readiness(True)
    return {"status": "ok", "redis": "up", "redis_ms": round((time.perf_counter() - started) * 1000, 2)}
