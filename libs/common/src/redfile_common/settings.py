"""Typed settings shared by every Redfile service.

Settings are read from the environment once, by the app factory (or the
gunicorn config), never at import time.  Each service subclasses
``ServiceSettings`` with its own fields and defaults.

Outside ``REDFILE_ENV=development`` a missing or placeholder secret is a
start-up error: the process refuses to run rather than sign tokens with a
key everyone knows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal, TypeVar

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

MIN_SECRET_LENGTH = 32

# Keys used only when REDFILE_ENV=development and nothing else is given.  They
# are public (they are in this file), so they are also on the placeholder list.
DEV_USER_TOKEN_KEYS = "dev-user:development-only-user-token-key-not-secret"
DEV_SERVICE_TOKEN_KEYS = "dev-svc:development-only-service-token-key-not-secret"
DEV_APP_SECRET_KEY = "development-only-app-secret-key-not-secret"

_PLACEHOLDER_MARKERS = ("change-me", "changeme", "change_me", "replace-me", "placeholder", "not-secret", "example", "xxxxxxxx")


class SettingsError(ValueError):
    """Raised when the environment cannot produce valid settings."""


@dataclass(frozen=True)
class SigningKey:
    kid: str
    secret: bytes


def parse_keyring(raw: str, name: str) -> list[SigningKey]:
    """Parse ``kid:secret[,kid:secret...]``; the first key signs, all verify."""
    keys: list[SigningKey] = []
    seen: set[str] = set()
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        kid, sep, secret = item.partition(":")
        kid, secret = kid.strip(), secret.strip()
        if not sep or not kid or not secret:
            raise SettingsError(f"{name}: each entry must be 'kid:secret'")
        if kid in seen:
            raise SettingsError(f"{name}: key id {kid!r} appears twice")
        seen.add(kid)
        keys.append(SigningKey(kid=kid, secret=secret.encode()))
    if not keys:
        raise SettingsError(f"{name}: at least one key is required")
    return keys


def is_placeholder(secret: str) -> bool:
    lowered = secret.lower()
    return len(secret) < MIN_SECRET_LENGTH or any(m in lowered for m in _PLACEHOLDER_MARKERS)


def _split_csv(value: object) -> object:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return value


class ServiceSettings(BaseSettings):
    """Settings every service has.  Variable names are the field names, upper-cased."""

    model_config = SettingsConfigDict(case_sensitive=False, extra="ignore", frozen=True)

    service_name: str = "redfile"
    redfile_env: Literal["development", "production", "test"] = "production"
    log_level: str = "INFO"

    app_secret_key: str = ""
    user_token_keys: str = ""
    service_token_keys: str = ""
    token_issuer: str = "redfile-auth"
    user_token_audience: str = "redfile"
    service_token_ttl: int = Field(default=30, ge=1, le=60)

    # Where the data lives (docs/deploy.md, "Choosing a Redis topology"): one server (standalone), a
    # primary found through Sentinel, or a Redis Cluster whose other nodes are found from REDIS_URL's.
    redis_mode: Literal["standalone", "sentinel", "cluster"] = "standalone"
    redis_url: str = "redis://127.0.0.1:6379/0"
    # sentinel: host:port of each sentinel, the name they monitor the primary by, their own password
    redis_sentinels: Annotated[list[str], NoDecode] = Field(default_factory=list)
    redis_sentinel_master: str = "redfile"
    redis_sentinel_password: str | None = None
    # A write that acknowledges stored data to a client (a chunk, a completion) is acknowledged only once
    # this many replicas confirmed it (Redis WAIT, within the request's budget); 0: once the primary has it.
    redis_wait_replicas: int = Field(default=0, ge=0, le=10)
    redis_username: str | None = None
    redis_password: str | None = None
    redis_socket_timeout: float = Field(default=5.0, gt=0)
    redis_connect_timeout: float = Field(default=2.0, gt=0)
    redis_retries: int = Field(default=3, ge=0, le=10)
    redis_max_connections: int = Field(default=64, ge=1)
    readiness_timeout: float = Field(default=1.0, gt=0)
    # What one request may wait on Redis and other services, all told (redfile_common.deadline); a body
    # (a chunk) adds its length / WRITE_BUDGET_RATE, a length within the largest body its route takes
    # (error_handlers.refuse_oversized_bodies); a streamed answer (a download) renews it per read.
    request_budget: float = Field(default=2.0, gt=0, le=60)
    write_budget_rate: float = Field(default=8 * 1024 * 1024, gt=0)
    # The circuit breaker in front of Redis (redfile_common.breaker): opens after this many timeouts or
    # connection errors in a row, lets one probe through after the reset timeout.  One: a command that
    # waited its whole timeout is proof enough (Redis answers in milliseconds), and with more, a request
    # queued behind the threads that wait could wait a whole budget of its own after them.
    breaker_failures: int = Field(default=1, ge=1, le=1000)
    breaker_reset_timeout: float = Field(default=1.0, gt=0, le=300)

    auth_url: str = "http://127.0.0.1:8001"
    files_url: str = "http://127.0.0.1:8002"
    admin_url: str = "http://127.0.0.1:8003"
    service_timeout: float = Field(default=10.0, gt=0)
    service_retries: int = Field(default=3, ge=0, le=10)

    admin_users: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["admin"])

    # How many proxies in front of the service set X-Forwarded-For, -Proto and -Host (the Ingress,
    # nginx, the dev gateway): the client's address, scheme and host are read from them only then.
    trusted_proxy_hops: int = Field(default=0, ge=0, le=5)

    metrics_port: int = Field(default=0, ge=0, le=65535)
    metrics_host: str = "127.0.0.1"
    # Redis INFO (memory, persistence) for the metrics and GET /admin/stats: one reading
    # is reused for this many seconds, and a reading waits at most redis_info_timeout.
    redis_info_ttl: float = Field(default=5.0, ge=0.5, le=300)
    redis_info_timeout: float = Field(default=1.0, gt=0, le=30)

    # The audit trail (Redis Stream rf:audit) keeps about this many entries (XADD MAXLEN ~).
    audit_max_len: int = Field(default=100_000, ge=100, le=100_000_000)
    # Seconds an audit entry's append may wait on Redis even when its request's budget is spent
    # (redfile_common.audit): an action that happened leaves its entry unless Redis cannot take it.
    audit_write_floor: float = Field(default=0.25, gt=0, le=10)

    _split_admins = field_validator("admin_users", mode="before")(_split_csv)
    _split_sentinels = field_validator("redis_sentinels", mode="before")(_split_csv)

    @field_validator("redis_sentinels")
    @classmethod
    def _check_sentinels(cls, value: list[str]) -> list[str]:
        for address in value:
            host, _, port = address.rpartition(":")
            if not host or not port.isdigit() or not 0 < int(port) < 65536:
                raise ValueError(f"REDIS_SENTINELS: {address!r} is not host:port")
        return value

    @property
    def development(self) -> bool:
        return self.redfile_env == "development"

    @model_validator(mode="after")
    def _check_secrets(self) -> ServiceSettings:
        # pydantic models are frozen; fill dev defaults through object.__setattr__.
        if self.development:
            for field, default in (
                ("app_secret_key", DEV_APP_SECRET_KEY),
                ("user_token_keys", DEV_USER_TOKEN_KEYS),
                ("service_token_keys", DEV_SERVICE_TOKEN_KEYS),
            ):
                if not getattr(self, field):
                    object.__setattr__(self, field, default)
        problems: list[str] = []
        if not self.development and is_placeholder(self.app_secret_key):
            problems.append(f"APP_SECRET_KEY is missing, a placeholder or shorter than {MIN_SECRET_LENGTH}")
        for field in ("user_token_keys", "service_token_keys"):
            env = field.upper()
            try:
                ring = parse_keyring(getattr(self, field), env)
            except SettingsError as exc:
                problems.append(str(exc))
                continue
            if not self.development and any(is_placeholder(k.secret.decode()) for k in ring):
                problems.append(f"{env} holds a placeholder key or one shorter than {MIN_SECRET_LENGTH}")
        if not problems and not self.development:
            user = {k.secret for k in parse_keyring(self.user_token_keys, "USER_TOKEN_KEYS")}
            svc = {k.secret for k in parse_keyring(self.service_token_keys, "SERVICE_TOKEN_KEYS")}
            if user & svc:
                problems.append("USER_TOKEN_KEYS and SERVICE_TOKEN_KEYS must not share a secret")
        if self.redis_mode == "sentinel" and not self.redis_sentinels:
            problems.append("REDIS_MODE=sentinel needs REDIS_SENTINELS (host:port,host:port,...)")
        if problems:
            raise SettingsError("invalid settings: " + "; ".join(problems))
        return self

    @property
    def user_keyring(self) -> list[SigningKey]:
        return parse_keyring(self.user_token_keys, "USER_TOKEN_KEYS")

    @property
    def service_keyring(self) -> list[SigningKey]:
        return parse_keyring(self.service_token_keys, "SERVICE_TOKEN_KEYS")

    def service_url(self, service: str) -> str:
        return {"auth": self.auth_url, "files": self.files_url, "admin": self.admin_url}[service].rstrip("/")


S = TypeVar("S", bound=ServiceSettings)


def load_settings(cls: type[S], overrides: dict | None = None) -> S:
    """Build settings from the environment, with explicit overrides winning.

    Converts pydantic's validation error into ``SettingsError`` so the
    message names variables, never their values.
    """
    from pydantic import ValidationError

    try:
        return cls(**(overrides or {}))
    except ValidationError as exc:
        messages = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]).upper()
            msg = err["msg"].removeprefix("Value error, ")
            messages.append(f"{where}: {msg}" if where else msg)
        raise SettingsError("; ".join(messages)) from None
