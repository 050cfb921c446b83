"""A route that needs a caller answers a caller without credentials 401, whatever the body.

Every endpoint of auth, files and admin whose policy (``authz_table.ROWS``) needs a user or a
service token, called anonymously with a body the services would refuse before routing: a JSON
body on a GET/HEAD/DELETE (RFC 9110: no meaning) and a JSON body that does not parse on the
others.  Authentication comes first: without credentials the body is not even looked at,
so an anonymous caller learns nothing about the route's input rules and gets the answer the
policy promises.  A caller *with* credentials still gets the body's 400.
"""

from __future__ import annotations

import re

import pytest

from redfile_dev.testing import auth_header, make_settings, settings_overrides, user_token

from .authz_table import ROWS

NEEDS_CREDENTIALS = ("user", "owner", "owner_or_admin", "recipient", "admin", "internal")
ROWS_WITH_CREDENTIALS = {row.key: row for row in ROWS if row.policy in NEEDS_CREDENTIALS}
CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}


@pytest.fixture(scope="module")
def apps(redis_server):
    from redfile_admin import create_app as admin_app
    from redfile_auth import create_app as auth_app
    from redfile_files import create_app as files_app

    url = redis_server.url
    return {
        "auth": auth_app(**settings_overrides(url, admin_users="admin", admin_password="admin-password-1", **CHEAP_ARGON2)),
        "files": files_app(**settings_overrides(url, sweep_interval=0)),
        "admin": admin_app(**settings_overrides(url)),
    }


def _path(rule: str) -> str:
    return re.sub(r"<([^:<>(]+)(?:\([^<>]*\))?:[^<>]+>|<[^<>]+>", lambda m: "1" if m.group(1) == "int" else "x1", rule)


def _hostile_body(method: str) -> dict:
    if method in ("GET", "HEAD", "DELETE"):
        return {"json": {"a": 1}}
    return {"data": b'{"not json', "content_type": "application/json"}


@pytest.mark.parametrize("key", sorted(ROWS_WITH_CREDENTIALS), ids=" ".join)
def test_no_credentials_is_401_before_the_body_is_read(apps, key):
    service, method, rule = key
    row = ROWS_WITH_CREDENTIALS[key]
    resp = apps[service].test_client().open(_path(rule), method=method, headers=dict(row.headers), **_hostile_body(method))
    assert resp.status_code == 401, (resp.status_code, resp.get_data(as_text=True))
    if method != "HEAD":
        assert resp.json["error"]["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


def test_the_anonymous_me_with_a_json_body_is_401(apps):
    resp = apps["auth"].test_client().get("/auth/me", json={})
    assert resp.status_code == 401 and resp.json["error"]["code"] == "unauthorized"


def test_options_still_answers_without_credentials(apps):
    resp = apps["files"].test_client().open("/files", method="OPTIONS")
    assert resp.status_code == 200 and "GET" in resp.headers["Allow"]


def test_a_bad_token_is_401_before_the_body_too(apps):
    resp = apps["files"].test_client().post("/files/zip", data=b"{", content_type="application/json", headers=auth_header("not-a-jwt"))
    assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_token"


def test_with_credentials_the_body_is_still_refused(apps, redis_server):
    from redfile_files.settings import FilesSettings

    from .cluster_aware import connect

    client = connect(redis_server.url)
    try:
        token = user_token(make_settings(FilesSettings, redis_server.url), client, "body-checker")
    finally:
        client.close()
    files = apps["files"].test_client()
    resp = files.get("/files", json={"a": 1}, headers=auth_header(token))
    assert resp.status_code == 400 and resp.json["error"]["code"] == "bad_request"
    resp = files.post("/files/zip", data=b"{", content_type="application/json", headers=auth_header(token))
    assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_json"
