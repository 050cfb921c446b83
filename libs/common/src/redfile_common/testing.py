"""Test helpers shared by every service's tests (a pytest plugin).

Enable with ``pytest_plugins = ["redfile_common.testing"]``.  Fixtures:

* ``redis_server`` (session): a private real Redis on a free loopback port.
* ``redis_url``: that server's URL, flushed before each test that uses it.
* ``redis_client``: a client of that server.
* ``spans``: an in-memory span exporter that records the test's spans (tracing is
  switched on for the process the first time it is used, and records only during
  the tests that ask for it).

And helpers to build settings and mint tokens the way auth does.
"""

from __future__ import annotations

import secrets
from pathlib import Path

import pytest
import redis

from .dev.redis_server import RedisProcess
from .settings import ServiceSettings
from .tokens import Keyring, ServiceTokens, TokenState, UserTokens

TEST_USER_KEYS = "test-u1:" + "u" * 40 + ",test-u0:" + "o" * 40
TEST_SERVICE_KEYS = "test-s1:" + "s" * 40
TEST_APP_SECRET = "a" * 40


def test_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment variables for a service process under test."""
    env = {
        "REDFILE_ENV": "test",
        "REDIS_URL": redis_url,
        "APP_SECRET_KEY": TEST_APP_SECRET,
        "USER_TOKEN_KEYS": TEST_USER_KEYS,
        "SERVICE_TOKEN_KEYS": TEST_SERVICE_KEYS,
        "LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


def settings_overrides(redis_url: str, **extra) -> dict:
    return {k.lower(): v for k, v in test_env(redis_url).items()} | extra


def make_settings(cls: type[ServiceSettings], redis_url: str, **extra) -> ServiceSettings:
    return cls(**settings_overrides(redis_url, **extra))


def user_token(settings: ServiceSettings, client: redis.Redis, username: str, role: str = "user", *, ttl: int = 900) -> str:
    """Mint an access token as auth would, creating the user's token version if missing."""
    state = TokenState(client)
    version = state.current(username) or state.bump(username)
    tokens = UserTokens(Keyring(settings.user_keyring), issuer=settings.token_issuer, audience=settings.user_token_audience)
    scopes = ["files:read", "files:write"] + (["admin"] if role == "admin" else [])
    token, _ = tokens.mint(username=username, role=role, scopes=scopes, version=version, ttl=ttl)
    return token


def service_token(settings: ServiceSettings, caller: str, target: str) -> str:
    return ServiceTokens(Keyring(settings.service_keyring), service_name=caller).mint(target)


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = RedisProcess(Path(tmp_path_factory.mktemp("redis")), appendonly=False).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    client = redis.Redis.from_url(redis_server.url)
    client.flushall()
    client.close()
    return redis_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


def _recording_switch():
    """A span processor that hands finished spans to an in-memory exporter while ``on``."""
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class RecordingSwitch(SpanProcessor):
        def __init__(self) -> None:
            self.exporter = InMemorySpanExporter()
            self.on = False

        def on_end(self, span) -> None:
            if self.on:
                self.exporter.export((span,))

    return RecordingSwitch()


@pytest.fixture(scope="session")
def _span_switch():
    from opentelemetry import trace

    from .tracing import init_tracing

    switch = _recording_switch()
    provider = trace.get_tracer_provider()
    if hasattr(provider, "add_span_processor"):  # tracing was already on in this process
        provider.add_span_processor(switch)
    else:
        init_tracing("test", span_processor=switch)
    return switch


@pytest.fixture
def spans(_span_switch):
    """The in-memory exporter of this test's finished spans."""
    _span_switch.exporter.clear()
    _span_switch.on = True
    yield _span_switch.exporter
    _span_switch.on = False
    _span_switch.exporter.clear()


@pytest.fixture
def serve():
    """Serve WSGI apps on free loopback ports in threads; returns ``start(app) -> base URL``."""
    import threading

    from werkzeug.serving import make_server

    servers = []

    def start(wsgi_app) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def unique() -> str:
    return secrets.token_hex(4)
