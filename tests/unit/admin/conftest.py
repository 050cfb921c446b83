"""Unit fixtures for the admin service: the real app, with fakeredis for token state and no upstreams."""

from __future__ import annotations

import fakeredis
import pytest

from redfile_common.app import redfile
from redfile_common.tokens import TokenState
from redfile_dev.testing import auth_header, settings_overrides, user_token

# Nothing listens on port 1: a request that wrongly reached auth or files would answer 502.
NOWHERE = "http://127.0.0.1:1"


@pytest.fixture
def app():
    from redfile_admin import create_app

    app = create_app(**settings_overrides("redis://127.0.0.1:1/0", auth_url=NOWHERE, files_url=NOWHERE, service_retries=0))
    fake = fakeredis.FakeRedis()
    redfile(app).token_state = TokenState(fake)
    app.extensions["test_redis"] = fake
    return app


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def token_for(app):
    def mint(username: str, role: str = "user") -> dict[str, str]:
        return auth_header(user_token(redfile(app).settings, app.extensions["test_redis"], username, role=role))

    return mint


@pytest.fixture
def as_admin(token_for):
    return token_for("root", role="admin")
