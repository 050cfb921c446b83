from __future__ import annotations

import json

import pytest

from redfile_common.app import redfile

from .conftest import ADMIN_PASSWORD, bearer


def test_login_and_me(client, create_user, session, app):
    create_user("alice")
    pair = session("Alice")
    assert set(pair) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert pair["token_type"] == "Bearer" and pair["expires_in"] == 900
    claims = redfile(app).user_tokens.verify(pair["access_token"])
    assert claims.sub == "alice" and claims.role == "user" and claims.scopes == ("files:read", "files:write")
    me = client.get("/auth/me", headers=bearer(pair))
    assert me.status_code == 200
    assert me.json["username"] == "alice" and me.json["role"] == "user" and me.json["active"] is True
    assert set(me.json) == {"id", "username", "role", "active", "created_at", "updated_at"}
    assert claims.uid == me.json["id"]  # the token names the account, not only its name
    assert me.json["created_at"].endswith("Z")


def test_bootstrap_admin_can_log_in_with_admin_scope(client, session, app):
    pair = session("admin", ADMIN_PASSWORD)
    claims = redfile(app).user_tokens.verify(pair["access_token"])
    assert claims.role == "admin" and "admin" in claims.scopes
    assert client.get("/auth/me", headers=bearer(pair)).json["role"] == "admin"


def test_me_needs_a_token(client):
    resp = client.get("/auth/me")
    assert resp.status_code == 401 and resp.json["error"]["code"] == "unauthorized"
    resp = client.get("/auth/me", headers=bearer("not-a-jwt"))
    assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_token"


def test_unknown_user_wrong_password_and_disabled_user_answer_identically(client, create_user, login, svc):
    create_user("alice")
    create_user("bob")
    client.patch("/internal/users/bob", json={"active": False}, headers=svc)
    responses = [
        login("alice", "wrong-password", "198.51.100.1"),
        login("nobody", "wrong-password", "198.51.100.2"),
        login("bob", "password-123", "198.51.100.3"),
    ]
    assert {r.status_code for r in responses} == {401}
    bodies = {r.get_data() for r in responses}
    assert len(bodies) == 1
    assert json.loads(bodies.pop()) == {"error": {"code": "invalid_credentials", "message": "Wrong username or password."}}
    headers = [{k: v for k, v in r.headers if k not in ("X-Request-ID",)} for r in responses]
    assert headers[0] == headers[1] == headers[2]


def test_failed_login_logs_the_username_never_the_password(create_user, login, events, log_records):
    create_user("alice")
    assert login("alice", "Sup3r-Secret-Guess").status_code == 401
    assert login("alice", "password-123").status_code == 200
    failed = events.named("login_failed")
    assert [e["username"] for e in failed] == ["alice"]
    assert failed[0]["level"] == "warning"
    everything = " ".join(str(r.msg) + str(r.args) for r in log_records)
    assert "Sup3r-Secret-Guess" not in everything and "password-123" not in everything
    assert "$argon2" not in everything


class TestRateLimits:
    @pytest.fixture
    def app_options(self):
        return {
            "login_max_failures_per_client": 3,
            "login_max_failures_per_user": 6,
            "login_max_failures_per_ip": 5,
            "login_failure_window": 120,
        }

    def test_per_client_lockout_with_retry_after(self, create_user, login, events):
        create_user("alice")
        create_user("bob")
        for _ in range(3):
            assert login("alice", "wrong-password", "198.51.100.1").status_code == 401
        locked = login("alice", "password-123", "198.51.100.1")  # right password, same address
        assert locked.status_code == 429
        assert locked.json == {"error": {"code": "too_many_requests", "message": "Too many requests; try again later."}}
        assert 1 <= int(locked.headers["Retry-After"]) <= 120
        assert (events.named("login_locked_out")[-1]["username"], events.named("login_locked_out")[-1]["scope"]) == ("alice", "client")
        assert login("alice", "password-123", "203.0.113.50").status_code == 200  # the owner, elsewhere
        assert login("bob", "password-123", "198.51.100.1").status_code == 200

    def test_per_ip_lockout_covers_all_usernames(self, login, events):
        for i in range(5):
            assert login(f"guess{i}", "wrong-password", "203.0.113.7").status_code == 401
        resp = login("admin", ADMIN_PASSWORD, "203.0.113.7")
        assert resp.status_code == 429 and int(resp.headers["Retry-After"]) >= 1
        assert events.named("login_locked_out")[-1]["scope"] == "ip"
        assert login("admin", ADMIN_PASSWORD, "203.0.113.8").status_code == 200

    def test_success_resets_the_clients_counter(self, login):
        for _ in range(2):
            assert login("admin", "wrong-password").status_code == 401
        assert login("admin", ADMIN_PASSWORD).status_code == 200
        for _ in range(2):
            assert login("admin", "wrong-password").status_code == 401
        assert login("admin", ADMIN_PASSWORD).status_code == 200  # 429 without the reset

    def test_counters_are_shared_between_replicas(self, app, make_app, app_options):
        replicas = [app.test_client(), make_app(**app_options).test_client()]
        body = {"username": "admin", "password": "wrong-password"}
        for i in range(3):
            assert replicas[i % 2].post("/auth/login", json=body).status_code == 401
        body["password"] = ADMIN_PASSWORD
        assert replicas[1].post("/auth/login", json=body).status_code == 429
        assert replicas[0].post("/auth/login", json=body).status_code == 429
