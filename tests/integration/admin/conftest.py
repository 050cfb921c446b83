"""Integration fixtures: the admin app (Flask test client, real Redis) calling real HTTP servers on loopback.

``serve(wsgi_app)`` runs any WSGI app on 127.0.0.1 in a thread.  ``Recorder``
is a tiny WSGI app for contract tests of the *client* side (which token,
which path, which parameters, what happens on each status); behaviour is
tested against the real auth and files apps (``real_services``).
"""

from __future__ import annotations

import json
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

from redfile_common.settings import parse_keyring
from redfile_common.tokens import Claims, Keyring, ServiceTokens, TokenError
from redfile_dev.testing import TEST_SERVICE_KEYS, auth_header, settings_overrides, user_token

USER = {"username": "ann", "role": "user", "active": True, "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"}
FILE = {
    "id": "f1",
    "name": "a.txt",
    "size": 3,
    "owner": "ann",
    "created_at": "2026-01-01T00:00:00Z",
    "updated_at": "2026-01-01T00:00:00Z",
    "mime_type": "text/plain",
    "sha256": "0" * 64,
    "kind": "file",
}


class LateApp:
    """A WSGI app assigned after its server has a port (the apps need each other's URLs)."""

    app: Callable[..., Any] | None = None

    def __call__(self, environ, start_response):
        assert self.app is not None, "the app is assigned before the first request"
        return self.app(environ, start_response)


@dataclass
class Call:
    method: str
    path: str  # as sent on the wire, still percent-encoded
    query: dict
    json: object
    claims: Claims | None


class Recorder:
    """Verifies each request's service token as ``service`` would, records it, answers from a script.

    A token not addressed to ``service`` (or signed with another key) gets the 401 the
    real service would give.  ``answers`` are (status, body) pairs used in order; then
    ``default``.
    """

    def __init__(self, service: str, answers=(), default=(200, {}), keys: str = TEST_SERVICE_KEYS) -> None:
        self.verifier = ServiceTokens(Keyring(parse_keyring(keys, "keys")), service_name=service)
        self.answers = deque(answers)
        self.default = default
        self.calls: list[Call] = []

    def __call__(self, environ, start_response):
        req = Request(environ)
        try:
            claims = self.verifier.verify(req.headers.get("Authorization", "").removeprefix("Bearer "))
            status, body = self.answers.popleft() if self.answers else self.default
        except TokenError as exc:
            claims, status, body = None, 401, {"error": {"code": "invalid_token", "message": exc.reason}}
        raw_path = environ.get("REQUEST_URI") or environ.get("RAW_URI") or req.full_path
        self.calls.append(Call(req.method, raw_path.split("?")[0], dict(req.args), req.get_json(silent=True), claims))
        data = b"" if body is None else json.dumps(body).encode()
        return Response(data, status=status, content_type="application/json")(environ, start_response)


@pytest.fixture
def make_admin(redis_url):
    """An admin app whose auth and files live at the given URLs."""

    def build(auth_url: str, files_url: str, **extra):
        from redfile_admin import create_app

        return create_app(**settings_overrides(redis_url, auth_url=auth_url, files_url=files_url, **extra))

    return build


@pytest.fixture
def mint(redis_client):
    """Access tokens the way auth mints them, against the shared Redis."""

    def token(app, username: str, role: str = "user") -> dict[str, str]:
        return auth_header(user_token(app.extensions["redfile"].settings, redis_client, username, role=role))

    return token
