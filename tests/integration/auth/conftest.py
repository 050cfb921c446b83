"""Integration fixtures for auth: the real app factory, and the domain without Flask, against the private test Redis."""

from __future__ import annotations

import logging

import pytest

from redfile_auth import create_app
from redfile_auth.accounts.service import Users
from redfile_auth.passwords import Passwords
from redfile_auth.sessions.limits import LoginLimits
from redfile_auth.sessions.service import Sessions
from redfile_auth.storage import AuthStore
from redfile_common.app import redfile
from redfile_common.limiter import FailureLimiter
from redfile_common.settings import parse_keyring
from redfile_common.tokens import Keyring, TokenState, UserTokens
from redfile_dev.testing import TEST_USER_KEYS, auth_header, service_token, settings_overrides

ADMIN_PASSWORD = "admin-password-1"
CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
ADDR = "192.0.2.10"


@pytest.fixture
def make_app(redis_url):
    def make(**extra):
        options = dict(CHEAP_ARGON2, admin_users="admin", admin_password=ADMIN_PASSWORD) | extra
        return create_app(**settings_overrides(redis_url, **options))

    return make


@pytest.fixture
def app_options() -> dict:
    """Extra settings for ``app``; override this fixture in a module or class."""
    return {}


@pytest.fixture
def app(make_app, app_options):
    return make_app(**app_options)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def settings(app):
    return redfile(app).settings


@pytest.fixture
def svc(settings) -> dict:
    """Headers with a service token from admin to auth."""
    return auth_header(service_token(settings, "admin", "auth"))


@pytest.fixture
def create_user(client, svc):
    def create(username: str, password: str = "password-123", role: str = "user") -> dict:
        resp = client.post("/internal/users", json={"username": username, "password": password, "role": role}, headers=svc)
        assert resp.status_code == 201, resp.json
        return resp.json

    return create


@pytest.fixture
def login(client):
    def do(username: str, password: str = "password-123", addr: str = ADDR):
        return client.post("/auth/login", json={"username": username, "password": password}, environ_base={"REMOTE_ADDR": addr})

    return do


@pytest.fixture
def session(login):
    """Log in and return the token pair (asserting success)."""

    def do(username: str, password: str = "password-123", addr: str = ADDR) -> dict:
        resp = login(username, password, addr)
        assert resp.status_code == 200, resp.json
        return resp.json

    return do


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def log_records(app):
    """Every log record of the process while the test runs (structlog event dicts in ``msg``)."""
    handler = _Collect()
    root = logging.getLogger()
    root.addHandler(handler)
    yield handler.records
    root.removeHandler(handler)


class Events:
    def __init__(self, records: list[logging.LogRecord]) -> None:
        self.records = records

    def named(self, name: str) -> list[dict]:
        return [r.msg for r in self.records if isinstance(r.msg, dict) and r.msg.get("event") == name]


@pytest.fixture
def events(log_records) -> Events:
    """The structlog events logged during the test, by name."""
    return Events(log_records)


def bearer(pair_or_token) -> dict:
    token = pair_or_token["access_token"] if isinstance(pair_or_token, dict) else pair_or_token
    return auth_header(token)


# -- the domain without Flask -----------------------------------------------------------
@pytest.fixture
def token_state(redis_client) -> TokenState:
    return TokenState(redis_client)


@pytest.fixture
def store(redis_client, token_state) -> AuthStore:
    return AuthStore(redis_client, token_state)


@pytest.fixture(scope="session")
def passwords() -> Passwords:
    return Passwords(time_cost=1, memory_kib=1024, parallelism=1)


@pytest.fixture
def users(store, passwords) -> Users:
    return Users(store, passwords, ["root", "boss"])


@pytest.fixture
def user_tokens() -> UserTokens:
    return UserTokens(Keyring(parse_keyring(TEST_USER_KEYS, "USER_TOKEN_KEYS")), issuer="redfile-auth", audience="redfile")


@pytest.fixture
def limits(redis_client) -> LoginLimits:
    return LoginLimits(FailureLimiter(redis_client, window=60), per_client=3, per_user=6, per_ip=5)


@pytest.fixture
def sessions(store, passwords, limits, user_tokens) -> Sessions:
    return Sessions(store, passwords, limits, user_tokens, access_ttl=900, refresh_ttl=3600)
