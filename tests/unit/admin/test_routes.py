"""The admin app's edge: authentication, authorization, validation and the OpenAPI document.

Auth and files are unreachable here (port 1), so any request that got past
the checks under test would answer 502; the assertions below prove it never
gets that far.
"""

import pytest

from redfile_common.tokens import TokenState

ROUTES = [
    ("post", "/admin/users", {"username": "ann", "password": "pw"}),
    ("get", "/admin/users", None),
    ("get", "/admin/users/ann", None),
    ("patch", "/admin/users/ann", {"active": False}),
    ("delete", "/admin/users/ann", None),
    ("post", "/admin/roles", {"username": "ann", "role": "admin"}),
    ("get", "/admin/files", None),
    ("delete", "/admin/files/f1", None),
    ("get", "/admin/users/ann/quota", None),
    ("put", "/admin/users/ann/quota", {"quota_bytes": 1000}),
    ("get", "/admin/stats", None),
    ("get", "/admin/users/ann/usage", None),
    ("get", "/admin/audit", None),
    ("get", "/admin/consistency", None),
]


def call(client, method, path, body, headers=None):
    return getattr(client, method)(path, json=body, headers=headers or {})


@pytest.mark.parametrize("method, path, body", ROUTES)
def test_no_token_is_401(client, method, path, body):
    resp = call(client, method, path, body)
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "unauthorized"
    assert resp.headers["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("method, path, body", ROUTES)
def test_a_bad_token_is_401(client, method, path, body):
    resp = call(client, method, path, body, {"Authorization": "Bearer not.a.jwt"})
    assert resp.status_code == 401
    assert resp.get_json()["error"]["code"] == "invalid_token"


@pytest.mark.parametrize("method, path, body", ROUTES)
def test_a_user_who_is_not_an_admin_is_403(client, token_for, method, path, body):
    resp = call(client, method, path, body, token_for("bob"))
    assert resp.status_code == 403
    assert resp.get_json()["error"]["code"] == "forbidden"


def test_a_non_admin_learns_nothing_about_the_input(client, token_for):
    resp = client.post("/admin/users", json={"nonsense": 1}, headers=token_for("bob"))
    assert resp.status_code == 403


def test_a_revoked_admin_token_is_401(app, client, as_admin):
    app.extensions["test_redis"].set(TokenState.version_key("root"), "another-version")
    resp = client.get("/admin/users", headers=as_admin)
    assert resp.status_code == 401 and resp.get_json()["error"]["code"] == "token_revoked"


@pytest.mark.parametrize(
    "method, path, body",
    [
        ("delete", "/admin/users/root", None),
        ("delete", "/admin/users/Root", None),
        ("patch", "/admin/users/root", {"active": False}),
        ("patch", "/admin/users/root", {"role": "user", "password": "x"}),
        ("post", "/admin/roles", {"username": "root", "role": "user"}),
    ],
)
def test_an_admin_cannot_delete_demote_or_disable_themselves(client, as_admin, method, path, body):
    resp = call(client, method, path, body, as_admin)
    assert resp.status_code == 409
    err = resp.get_json()["error"]
    assert err["code"] == "conflict" and "your own" in err["message"]


@pytest.mark.parametrize(
    "method, path, body, status, code",
    [
        ("post", "/admin/users", {"username": "ann"}, 422, "validation_error"),
        ("post", "/admin/users", {"username": "ann", "password": "pw", "role": "owner"}, 422, "validation_error"),
        ("post", "/admin/users", {"username": 7, "password": "pw"}, 422, "validation_error"),
        ("post", "/admin/users", ["ann", "pw"], 422, "validation_error"),
        ("post", "/admin/users", None, 422, "validation_error"),
        ("patch", "/admin/users/ann", {}, 422, "validation_error"),
        ("patch", "/admin/users/ann", {"active": "false"}, 422, "validation_error"),
        ("post", "/admin/roles", {"username": "ann"}, 422, "validation_error"),
        ("get", "/admin/users?limit=500", None, 422, "validation_error"),
        ("get", "/admin/files?limit=abc", None, 422, "validation_error"),
        ("put", "/admin/users/ann/quota", {}, 422, "validation_error"),
        ("put", "/admin/users/ann/quota", {"quota_bytes": -1}, 422, "validation_error"),
        ("put", "/admin/users/ann/quota", {"quota_bytes": "10"}, 422, "validation_error"),
        ("put", "/admin/users/ann/quota", {"quota_bytes": 10, "max_file_bytes": 0}, 422, "validation_error"),
    ],
)
def test_bad_input_is_a_4xx_json_error(client, as_admin, method, path, body, status, code):
    resp = call(client, method, path, body, as_admin)
    assert resp.status_code == status
    assert resp.get_json()["error"]["code"] == code


@pytest.mark.parametrize("path", ["/admin/users", "/admin/roles"])
def test_malformed_json_is_invalid_json(client, as_admin, path):
    resp = client.post(path, data='{"username": ', headers={**as_admin, "Content-Type": "application/json"})
    assert resp.status_code == 400
    assert resp.get_json()["error"]["code"] == "invalid_json"


def test_valid_input_reaches_the_upstream(client, as_admin):
    # The counterpart of the tests above: with nothing listening, a valid admin request is a 502.
    resp = client.post("/admin/users", json={"username": "ann", "password": "pw"}, headers=as_admin)
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "bad_gateway"


def test_openapi_documents_every_route_with_bearer_auth(client):
    spec = client.get("/admin/openapi.json").get_json()
    operations = {
        (method.upper(), path)
        for path, item in spec["paths"].items()
        for method in item
        if method in ("get", "post", "put", "patch", "delete")
    }
    assert operations == {
        ("POST", "/admin/users"),
        ("GET", "/admin/users"),
        ("GET", "/admin/users/{username}"),
        ("PATCH", "/admin/users/{username}"),
        ("DELETE", "/admin/users/{username}"),
        ("POST", "/admin/roles"),
        ("GET", "/admin/files"),
        ("DELETE", "/admin/files/{file_id}"),
        ("GET", "/admin/users/{username}/quota"),
        ("PUT", "/admin/users/{username}/quota"),
        ("GET", "/admin/stats"),
        ("GET", "/admin/users/{username}/usage"),
        ("GET", "/admin/audit"),
        ("GET", "/admin/consistency"),
    }
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method in ("get", "post", "put", "patch", "delete"):
                assert op["security"] == [{"BearerAuth": []}], (method, path)
                assert op["summary"], (method, path)
                assert {"401", "403"} <= set(op["responses"])
    create = spec["paths"]["/admin/users"]["post"]
    assert "201" in create["responses"]
    schema_ref = create["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    body_schema = spec["components"]["schemas"][schema_ref.rsplit("/", 1)[1]]
    assert set(body_schema["required"]) == {"username", "password"}
    assert body_schema["properties"]["role"]["enum"] == ["admin", "user"]
