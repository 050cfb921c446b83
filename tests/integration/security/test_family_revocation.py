"""A reused refresh token ends its whole family: the access tokens already minted from it too, at every service.

Real auth, files and admin apps on the private Redis.  Each service verifies access tokens
itself (``redfile_common.security``), so each must see the family's revocation on the very
next request, not when the access token expires.
"""

from __future__ import annotations

import pytest

from redfile_dev.testing import settings_overrides

CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
ADMIN_PASSWORD = "admin-password-1"
# one route per service that needs an admin's access token and no other service
PROBES = {"auth": "/auth/me", "files": "/files", "admin": "/admin/audit"}


@pytest.fixture
def clients(redis_url):
    from redfile_admin import create_app as admin_app
    from redfile_auth import create_app as auth_app
    from redfile_files import create_app as files_app

    apps = {
        "auth": auth_app(**settings_overrides(redis_url, admin_users="admin", admin_password=ADMIN_PASSWORD, **CHEAP_ARGON2)),
        "files": files_app(**settings_overrides(redis_url, sweep_interval=0)),
        "admin": admin_app(**settings_overrides(redis_url)),
    }
    return {name: app.test_client() for name, app in apps.items()}


def _status_everywhere(clients, access: str) -> dict[str, int]:
    headers = {"Authorization": f"Bearer {access}"}
    return {name: clients[name].get(path, headers=headers).status_code for name, path in PROBES.items()}


def _login(clients) -> dict:
    resp = clients["auth"].post("/auth/login", json={"username": "admin", "password": ADMIN_PASSWORD})
    assert resp.status_code == 200, resp.json
    return resp.json


def _refresh(clients, refresh_token: str):
    return clients["auth"].post("/auth/refresh", json={"refresh_token": refresh_token})


def test_reused_refresh_token_ends_the_familys_access_tokens_at_every_service(clients):
    first = _login(clients)
    second = _refresh(clients, first["refresh_token"]).json
    other_session = _login(clients)  # another login of the same user: another family
    everywhere_ok = {"auth": 200, "files": 200, "admin": 200}
    assert _status_everywhere(clients, first["access_token"]) == everywhere_ok
    assert _status_everywhere(clients, second["access_token"]) == everywhere_ok

    reused = _refresh(clients, first["refresh_token"])  # stolen: the first token is presented again
    assert reused.status_code == 401

    everywhere_refused = {"auth": 401, "files": 401, "admin": 401}
    assert _status_everywhere(clients, first["access_token"]) == everywhere_refused
    assert _status_everywhere(clients, second["access_token"]) == everywhere_refused
    assert clients["files"].get("/files", headers={"Authorization": f"Bearer {second['access_token']}"}).json["error"]["code"] == (
        "token_revoked"
    )
    assert _refresh(clients, second["refresh_token"]).status_code == 401  # the family's refresh tokens too
    # the user's other session is not concerned
    assert _status_everywhere(clients, other_session["access_token"]) == everywhere_ok
    assert _refresh(clients, other_session["refresh_token"]).status_code == 200


def test_logout_with_the_refresh_token_ends_the_familys_other_access_tokens(clients):
    first = _login(clients)
    second = _refresh(clients, first["refresh_token"]).json
    resp = clients["auth"].post(
        "/auth/logout", json={"refresh_token": second["refresh_token"]}, headers={"Authorization": f"Bearer {second['access_token']}"}
    )
    assert resp.status_code == 204, resp.json
    assert _status_everywhere(clients, first["access_token"]) == {"auth": 401, "files": 401, "admin": 401}
