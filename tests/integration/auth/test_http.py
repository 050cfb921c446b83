"""Bad input gives 4xx in the one error shape; the OpenAPI document describes the routes."""

from __future__ import annotations

import pytest

from .conftest import bearer


def assert_error(resp, status, code=None):
    assert resp.status_code == status, resp.get_data()
    assert resp.is_json
    assert set(resp.json) == {"error"} and {"code", "message"} <= set(resp.json["error"])
    if code:
        assert resp.json["error"]["code"] == code


@pytest.mark.parametrize("path", ["/auth/login", "/auth/refresh"])
def test_invalid_json(client, path):
    assert_error(client.post(path, data="{not json", content_type="application/json"), 400, "invalid_json")
    assert_error(client.post(path, data=b"\xff\xfe", content_type="application/json"), 400, "invalid_json")


@pytest.mark.parametrize(
    "body",
    [
        {},
        [],
        None,
        "text",
        {"username": "admin"},
        {"username": ["admin"], "password": "x"},
        {"username": "admin", "password": 12345678},
        {"username": "admin", "password": "x" * 1025},
    ],
)
def test_login_bad_bodies(client, body):
    resp = client.post("/auth/login", json=body)
    assert_error(resp, 422, "validation_error")


def test_login_not_json_at_all(client):
    assert client.post("/auth/login", data="username=admin", content_type="application/x-www-form-urlencoded").status_code in (415, 422)
    assert client.post("/auth/login").status_code == 422


def test_too_large_body(client):
    resp = client.post("/auth/login", data='{"username": "' + "a" * 70000 + '"}', content_type="application/json")
    assert_error(resp, 413, "payload_too_large")


def test_refresh_bad_bodies(client):
    assert_error(client.post("/auth/refresh", json={}), 422, "validation_error")
    assert_error(client.post("/auth/refresh", json={"refresh_token": 5}), 422, "validation_error")
    assert_error(client.post("/auth/refresh", json={"refresh_token": "x" * 300}), 422, "validation_error")


def test_password_bad_bodies(client, session):
    pair = session("admin", "admin-password-1")
    for body in ({}, {"current_password": "admin-password-1"}, {"current_password": 1, "new_password": 2}):
        assert_error(client.post("/auth/password", json=body, headers=bearer(pair)), 422, "validation_error")
    assert_error(client.post("/auth/password", data="{", content_type="application/json", headers=bearer(pair)), 400, "invalid_json")


def test_unknown_route_and_wrong_method(client):
    assert_error(client.get("/auth/nothing-here"), 404, "not_found")
    resp = client.get("/auth/login")
    assert_error(resp, 405, "method_not_allowed")
    assert "POST" in resp.headers["Allow"]


def test_malformed_bearer(client):
    for header in ("Bearer", "Basic abc", "Bearer a.b.c", "bearer  "):
        assert_error(client.get("/auth/me", headers={"Authorization": header}), 401)


def test_openapi_document(client):
    resp = client.get("/auth/openapi.json")
    assert resp.status_code == 200
    spec = resp.json
    # the /internal/ operations are in the internal document (no client reaches them)
    paths = {**spec["paths"], **client.get("/internal/openapi.json").json["paths"]}
    assert not [p for p in spec["paths"] if p.startswith("/internal/")]
    expected = {
        "/auth/login": {"post"},
        "/auth/refresh": {"post"},
        "/auth/logout": {"post"},
        "/auth/me": {"get"},
        "/auth/password": {"post"},
        "/internal/users": {"get", "post"},
        "/internal/users/{username}": {"get", "patch", "delete"},
        "/internal/stats": {"get"},
    }
    assert set(paths) == set(expected)
    for path, methods in expected.items():
        assert set(paths[path]) - {"parameters"} == methods, path
        for method in methods:
            assert paths[path][method]["summary"], (path, method)
    assert "security" not in paths["/auth/login"]["post"]
    assert paths["/auth/me"]["get"]["security"] == [{"BearerAuth": []}]
    assert paths["/internal/users"]["post"]["security"] == [{"ServiceToken": []}]
    assert paths["/internal/users"]["post"]["responses"].keys() >= {"201", "401", "409", "422"}
    schemas = spec["components"]["schemas"]
    assert set(schemas["LoginIn"]["required"]) == {"username", "password"}
    assert set(schemas["User"]["properties"]) == {"id", "username", "role", "active", "created_at", "updated_at"}
    assert set(schemas["TokenPair"]["properties"]) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert schemas["UserPage"]["properties"]["items"]["items"] == {"$ref": "#/components/schemas/User"}
    assert set(spec["components"]["securitySchemes"]) >= {"BearerAuth", "ServiceToken"}
