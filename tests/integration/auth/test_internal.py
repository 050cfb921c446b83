"""The internal user API: service tokens addressed to auth only."""

from __future__ import annotations

import pytest

from redfile_common.app import redfile
from redfile_dev.testing import auth_header, service_token, user_token

from .conftest import bearer


@pytest.mark.parametrize(
    "method,path",
    [
        ("get", "/internal/users"),
        ("post", "/internal/users"),
        ("get", "/internal/users/admin"),
        ("patch", "/internal/users/admin"),
        ("delete", "/internal/users/admin"),
    ],
)
def test_internal_api_needs_a_service_token_for_auth(client, settings, redis_client, session, method, path):
    call = getattr(client, method)
    kwargs = {"json": {"username": "x1", "password": "password-123"}} if method == "post" else {}
    assert call(path, **kwargs).status_code == 401
    admin_pair = session("admin", "admin-password-1")
    for headers in (
        bearer(admin_pair),  # a real admin's access token
        auth_header(user_token(settings, redis_client, "admin", "admin")),
        auth_header(service_token(settings, "admin", "files")),  # for another service
        auth_header(service_token(settings, "files", "admin")),
    ):
        resp = call(path, headers=headers, **kwargs)
        assert resp.status_code == 401, headers
        assert resp.json["error"]["code"] == "invalid_token"
    assert client.get("/internal/users/admin", headers=auth_header(service_token(settings, "files", "auth"))).status_code == 200


def test_create_get_and_conflict(client, svc):
    resp = client.post("/internal/users", json={"username": "Alice", "password": "password-123", "role": "user"}, headers=svc)
    assert resp.status_code == 201
    user = resp.json
    assert user["username"] == "alice" and user["role"] == "user" and user["active"] is True
    assert set(user) == {"id", "username", "role", "active", "created_at", "updated_at"}
    assert client.get("/internal/users/alice", headers=svc).json == user
    assert client.get("/internal/users/ALICE", headers=svc).json == user
    again = client.post("/internal/users", json={"username": "alice", "password": "password-456"}, headers=svc)
    assert again.status_code == 409 and again.json["error"]["code"] == "user_exists"


def test_role_defaults_to_user_and_configured_admins_are_admins(make_app):
    app = make_app(admin_users="admin,boss")
    client = app.test_client()
    svc = auth_header(service_token(redfile(app).settings, "admin", "auth"))
    assert client.post("/internal/users", json={"username": "carol", "password": "password-123"}, headers=svc).json["role"] == "user"
    boss = client.post("/internal/users", json={"username": "boss", "password": "password-123", "role": "user"}, headers=svc)
    assert boss.json["role"] == "admin"
    demote = client.patch("/internal/users/boss", json={"role": "user"}, headers=svc)
    assert demote.status_code == 409 and demote.json["error"]["code"] == "conflict"


def test_get_and_delete_unknown(client, svc):
    for method in ("get", "patch", "delete"):
        resp = getattr(client, method)("/internal/users/ghost", headers=svc, **({"json": {}} if method == "patch" else {}))
        assert resp.status_code == 404 and resp.json["error"]["code"] == "user_not_found"


@pytest.mark.parametrize(
    "body,field",
    [
        ({"username": "a", "password": "password-123"}, "username"),
        ({"username": "-alice", "password": "password-123"}, "username"),
        ({"username": "alice", "password": "short"}, "password"),
        ({"username": "alice", "password": "password-123", "role": "root"}, "role"),
        ({"username": "alice"}, "password"),
        ({"username": 7, "password": "password-123"}, "username"),
        ({"username": "alice", "password": "password-123", "is_admin": True}, "is_admin"),
    ],
)
def test_create_rejects_bad_input(client, svc, body, field):
    resp = client.post("/internal/users", json=body, headers=svc)
    assert resp.status_code == 422
    assert resp.json["error"]["code"] == "validation_error"
    assert field in resp.json["error"]["details"]["json"]
    assert client.get("/internal/users/alice", headers=svc).status_code == 404


def test_list_pages_through_every_user(client, svc, create_user):
    names = [f"user{i:02d}" for i in range(7)]
    for name in reversed(names):
        create_user(name)
    seen, cursor, pages = [], None, 0
    while True:
        query = {"limit": 3} | ({"cursor": cursor} if cursor else {})
        resp = client.get("/internal/users", query_string=query, headers=svc)
        assert resp.status_code == 200
        assert len(resp.json["items"]) <= 3
        seen += [u["username"] for u in resp.json["items"]]
        cursor, pages = resp.json["next_cursor"], pages + 1
        if cursor is None:
            break
    assert seen == ["admin", *names] and pages == 3
    default = client.get("/internal/users", headers=svc).json
    assert len(default["items"]) == 8 and default["next_cursor"] is None


@pytest.mark.parametrize("query", [{"limit": 0}, {"limit": 201}, {"limit": "many"}, {"cursor": "%%%"}])
def test_list_rejects_bad_paging(client, svc, query):
    resp = client.get("/internal/users", query_string=query, headers=svc)
    assert resp.status_code in (400, 422)
    assert resp.json["error"]["code"] in ("bad_request", "validation_error")


def test_patch(client, svc, create_user, login):
    create_user("alice")
    resp = client.patch("/internal/users/alice", json={"role": "admin", "active": False}, headers=svc)
    assert resp.status_code == 200
    assert resp.json["role"] == "admin" and resp.json["active"] is False
    assert client.get("/internal/users/alice", headers=svc).json == resp.json
    assert client.patch("/internal/users/alice", json={"active": True, "password": "new-password-1"}, headers=svc).status_code == 200
    assert login("alice", "password-123").status_code == 401
    assert login("alice", "new-password-1").status_code == 200
    for body in ({"active": "yes"}, {"role": "owner"}, {"password": "short"}, {"username": "bob"}):
        bad = client.patch("/internal/users/alice", json=body, headers=svc)
        assert bad.status_code == 422, body


@pytest.mark.parametrize(
    "change", [("patch", {"active": False}), ("patch", {"role": "admin"}), ("patch", {"password": "another-password"}), ("delete", None)]
)
def test_every_change_ends_existing_sessions_at_once(client, svc, create_user, session, change):
    create_user("alice")
    pair = session("alice")
    assert client.get("/auth/me", headers=bearer(pair)).status_code == 200
    method, body = change
    resp = getattr(client, method)("/internal/users/alice", headers=svc, **({"json": body} if body else {}))
    assert resp.status_code in (200, 204)
    me = client.get("/auth/me", headers=bearer(pair))
    assert me.status_code == 401 and me.json["error"]["code"] == "token_revoked"


def test_patch_with_no_real_change_keeps_sessions(client, svc, create_user, session):
    create_user("alice")
    pair = session("alice")
    assert client.patch("/internal/users/alice", json={"role": "user", "active": True}, headers=svc).status_code == 200
    assert client.patch("/internal/users/alice", json={}, headers=svc).status_code == 200
    assert client.get("/auth/me", headers=bearer(pair)).status_code == 200


def test_delete(client, svc, create_user, login, session):
    create_user("alice")
    old = session("alice")
    resp = client.delete("/internal/users/alice", headers=svc)
    assert resp.status_code == 204 and resp.get_data() == b""
    assert client.get("/internal/users/alice", headers=svc).status_code == 404
    assert login("alice").status_code == 401
    assert [u["username"] for u in client.get("/internal/users", headers=svc).json["items"]] == ["admin"]
    # The name can be taken again, and the old sessions stay dead.
    create_user("alice", "another-password")
    assert login("alice", "another-password").status_code == 200
    assert client.get("/auth/me", headers=bearer(old)).status_code == 401
    assert client.post("/auth/refresh", json={"refresh_token": old["refresh_token"]}).status_code == 401


def test_an_account_id_is_immutable_and_a_recreated_name_gets_another(client, svc):
    created = client.post("/internal/users", json={"username": "dora", "password": "password-123"}, headers=svc).json
    assert len(created["id"]) == 32 and int(created["id"], 16) >= 0
    changed = client.patch("/internal/users/dora", json={"role": "admin", "active": False, "password": "password-456"}, headers=svc).json
    assert changed["id"] == created["id"]
    assert client.delete("/internal/users/dora", headers=svc).status_code == 204
    again = client.post("/internal/users", json={"username": "dora", "password": "password-123"}, headers=svc).json
    assert again["username"] == "dora" and again["id"] != created["id"]


def test_an_account_deleted_while_it_is_given_its_id_is_not_found(client, svc, redis_client, monkeypatch):
    """A record stored before ids, deleted between its read and the id it is given: 404, never a user with no id."""
    from redfile_auth.storage import AuthStore

    assert client.post("/internal/users", json={"username": "erin", "password": "password-123"}, headers=svc).status_code == 201
    redis_client.hdel("auth:user:{erin}", "id")
    read = AuthStore.get_user

    def read_then_deleted(self, username):
        record = read(self, username)
        self.delete_user(username)  # gone before ensure_id runs
        return record

    monkeypatch.setattr(AuthStore, "get_user", read_then_deleted)
    resp = client.get("/internal/users/erin", headers=svc)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "user_not_found"
