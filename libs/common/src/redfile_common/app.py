"""The base app factory every service builds on.

``create_service_app`` wires settings, the Redis client, tokens, errors,
logs, metrics, tracing, health, the audit trail, security events and the
OpenAPI document into an APIFlask app; each service's own ``create_app``
then registers its blueprints.  Nothing here runs at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import redis
from apiflask import APIFlask
from flask.sessions import SessionInterface
from redis import Redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import contract, deadline, docs_assets, error_handlers, health, logs, metrics, redis_topology, replicas, tracing
from .audit import AuditLog, request_context
from .body_drain import DrainUnreadBody
from .breaker import CircuitBreaker
from .product_metrics import CommonMetrics
from .redis_info import RedisInfo, info_client
from .security import BEARER_SCHEME, SERVICE_SCHEME, credentials_first
from .security_events import SecurityEvents
from .service_client import ServiceClient
from .settings import ServiceSettings
from .tokens import Keyring, ServiceTokens, TokenState, UserTokens

DRAIN_LIMIT = 32 * 1024 * 1024  # twice the front door's body limit: every body it lets through

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {}},
        }
    },
}


@dataclass
class Redfile:
    """What a service's code needs at run time; kept in ``app.extensions['redfile']``."""

    settings: ServiceSettings
    redis: Redis
    readiness_redis: Redis
    breaker: CircuitBreaker
    user_tokens: UserTokens
    service_tokens: ServiceTokens
    token_state: TokenState
    services: ServiceClient
    metrics: CommonMetrics
    audit: AuditLog
    security_events: SecurityEvents
    redis_info: RedisInfo
    on_token_rejected: Callable[[str, str], None] | None = None
    extra: dict[str, Any] = field(default_factory=dict)  # per-app singletons of the shared library (product metrics)
    domain: Any = None  # the service's own domain object: ``attach_domain`` sets it, ``domain_of`` reads it


class NoSessions(SessionInterface):
    """Flask's session, never opened: ``flask.session`` is a null session that refuses writes."""

    def open_session(self, app, request):
        return None

    def save_session(self, app, session, response) -> None:
        return None


def create_service_app(import_name: str, settings: ServiceSettings, *, title: str, version: str = "0.1.0") -> APIFlask:
    name = settings.service_name
    logs.configure_logging(name, settings.log_level)
    tracing.init_tracing(name)

    app = APIFlask(
        import_name, title=title, version=version, spec_path=f"/{name}/openapi.json", docs_path=f"/{name}/docs", json_errors=True
    )
    app.config.update(
        SECRET_KEY=settings.app_secret_key,
        JSON_SORT_KEYS=False,
        SECURITY_SCHEMES={**BEARER_SCHEME, **SERVICE_SCHEME},
        HTTP_ERROR_SCHEMA=ERROR_SCHEMA,
        VALIDATION_ERROR_SCHEMA=ERROR_SCHEMA,
        AUTO_SERVERS=False,
        TESTING=settings.redfile_env == "test",
    )
    docs_assets.init_docs_assets(app, name)  # Swagger UI from the service itself, not a CDN
    # first of all hooks: every request gets its id and its log line, also one refused by a hook below
    logs.init_request_logging(app, name)
    app.request_class = error_handlers.JsonRequest
    # No service keeps state in Flask's cookie session (every caller sends a bearer token), so none
    # is opened: the default would build a signing serializer on every request.
    app.session_interface = NoSessions()
    app.error_processor(error_handlers.apiflask_error_processor)
    app.before_request(credentials_first)  # ahead of the body checks: no credentials, no look at the body
    error_handlers.register_error_handlers(app)
    contract.init_contract(app)  # the documents' last word: required bodies, /internal/ in a document of its own

    registry = metrics.new_registry()
    instruments = CommonMetrics(name, registry)
    breaker = CircuitBreaker(
        failures=settings.breaker_failures, reset_timeout=settings.breaker_reset_timeout, on_change=_breaker_reporter(instruments)
    )
    client = redis_topology.make_redis(settings, observer=instruments.redis_command, breaker=breaker)
    if settings.redis_mode == "standalone":
        readiness = redis.Redis.from_url(
            settings.redis_url,
            username=settings.redis_username or None,
            password=settings.redis_password or None,
            socket_timeout=settings.readiness_timeout,
            socket_connect_timeout=settings.readiness_timeout,
            max_connections=4,
            retry=Retry(NoBackoff(), 0),  # one try: /readyz fails within READINESS_TIMEOUT
            health_check_interval=0,
        )
    else:
        readiness = redis_topology.readiness_client(settings)
    service_tokens = ServiceTokens(Keyring(settings.service_keyring), service_name=name, ttl=settings.service_token_ttl)
    app.extensions["redfile"] = Redfile(
        settings=settings,
        redis=client,
        readiness_redis=readiness,
        breaker=breaker,
        user_tokens=UserTokens(Keyring(settings.user_keyring), issuer=settings.token_issuer, audience=settings.user_token_audience),
        service_tokens=service_tokens,
        token_state=TokenState(client),
        services=ServiceClient(
            service_tokens,
            {s: settings.service_url(s) for s in ("auth", "files", "admin")},
            timeout=settings.service_timeout,
            retries=settings.service_retries,
            metrics=instruments,
        ),
        metrics=instruments,
        audit=AuditLog(
            client,
            service=name,
            max_len=settings.audit_max_len,
            floor=settings.audit_write_floor,
            context=request_context,
            on_written=instruments.audit_written,
            on_failed=instruments.audit_failed,
        ),
        security_events=SecurityEvents(count=instruments.security_event),
        redis_info=RedisInfo(info_client(settings), ttl=settings.redis_info_ttl),
        on_token_rejected=instruments.token_rejected,
    )

    if settings.trusted_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        hops = settings.trusted_proxy_hops  # the address, scheme and host the trusted proxies saw (each sets all three)
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]  # Flask's documented way to wrap its WSGI app
    metrics.init_metrics(app, name, registry)
    replicas.init_confirmation(app, client)
    deadline.init_deadlines(app, budget=settings.request_budget, write_rate=settings.write_budget_rate)
    tracing.instrument_app(app)
    # what an answer left of a body is read after it, so the proxy in front gets the answer, not a reset
    app.wsgi_app = DrainUnreadBody(app.wsgi_app, limit=DRAIN_LIMIT)  # type: ignore[method-assign]  # Flask's documented way to wrap its WSGI app
    app.register_blueprint(health.bp)
    return app


def _breaker_reporter(instruments: CommonMetrics):
    import structlog

    log = structlog.get_logger("redfile.redis")

    def report(old: str, new: str) -> None:
        instruments.breaker_changed(old, new)
        level = log.warning if new == "open" else log.info
        level("redis_breaker_changed", old=old, new=new)

    return report


def redfile(app=None) -> Redfile:
    from flask import current_app

    return (app or current_app).extensions["redfile"]


T = TypeVar("T")


def attach_domain(app, domain: object) -> None:
    """Make ``domain`` (what the service's routes call) the app's: the one way every service attaches it."""
    redfile(app).domain = domain


def domain_of(kind: type[T], app=None) -> T:
    """The app's domain object (the current app's by default), checked to be a ``kind``."""
    found = redfile(app).domain
    if not isinstance(found, kind):
        raise RuntimeError(f"no {kind.__name__} attached to this app (attach_domain in its create_app)")
    return found
