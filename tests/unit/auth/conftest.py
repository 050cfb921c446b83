"""Unit-test fixtures for auth: fakeredis (no server) and cheap Argon2.

Login and password change run the failure limiter's Lua, which fakeredis lacks: their tests are in
tests/integration/auth (test_session_rules.py, test_login_observed.py)."""

from __future__ import annotations

import fakeredis
import pytest

from redfile_auth.accounts.service import Users
from redfile_auth.passwords import Passwords
from redfile_auth.storage import AuthStore
from redfile_common.settings import parse_keyring
from redfile_common.tokens import Keyring, TokenState, UserTokens
from redfile_dev.testing import TEST_USER_KEYS

CHEAP = {"time_cost": 1, "memory_kib": 1024, "parallelism": 1}


@pytest.fixture
def fake():
    client = fakeredis.FakeRedis()
    yield client
    client.close()


@pytest.fixture
def token_state(fake) -> TokenState:
    return TokenState(fake)


@pytest.fixture
def store(fake, token_state) -> AuthStore:
    return AuthStore(fake, token_state)


@pytest.fixture(scope="session")
def passwords() -> Passwords:
    return Passwords(**CHEAP)


@pytest.fixture
def users(store, passwords) -> Users:
    return Users(store, passwords, ["root", "boss"])


@pytest.fixture
def user_tokens() -> UserTokens:
    return UserTokens(Keyring(parse_keyring(TEST_USER_KEYS, "USER_TOKEN_KEYS")), issuer="redfile-auth", audience="redfile")
