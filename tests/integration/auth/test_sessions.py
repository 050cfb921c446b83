"""Refresh rotation, reuse detection, logout and password change on real Redis (Lua)."""

from __future__ import annotations

from redfile_common.app import redfile

from .conftest import bearer


def refresh(client, token):
    return client.post("/auth/refresh", json={"refresh_token": token})


def test_refresh_rotates(client, create_user, session, app):
    create_user("alice")
    first = session("alice")
    resp = refresh(client, first["refresh_token"])
    assert resp.status_code == 200
    second = resp.json
    assert set(second) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert second["refresh_token"] != first["refresh_token"]
    assert redfile(app).user_tokens.verify(second["access_token"]).sub == "alice"
    assert client.get("/auth/me", headers=bearer(second)).status_code == 200
    third = refresh(client, second["refresh_token"])
    assert third.status_code == 200


def test_reusing_a_refresh_token_revokes_the_whole_family(client, create_user, session, events):
    create_user("alice")
    first = session("alice")
    other = session("alice")  # a second login: another family
    second = refresh(client, first["refresh_token"]).json
    reuse = refresh(client, first["refresh_token"])
    assert reuse.status_code == 401 and reuse.json["error"]["code"] == "invalid_token"
    assert events.named("refresh_token_reuse")[-1]["username"] == "alice"
    # The successor handed out before the reuse is dead too ...
    assert refresh(client, second["refresh_token"]).status_code == 401
    # ... but the other login's family is not.
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_unknown_refresh_token(client):
    resp = refresh(client, "made-up-token")
    assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_token"


def test_refresh_fails_when_user_disabled_changed_or_deleted(client, create_user, session, svc):
    create_user("alice")
    create_user("bob")
    create_user("carol")
    a, b, c = session("alice"), session("bob"), session("carol")
    client.patch("/internal/users/alice", json={"active": False}, headers=svc)
    client.patch("/internal/users/bob", json={"role": "admin"}, headers=svc)
    client.delete("/internal/users/carol", headers=svc)
    for pair in (a, b, c):
        resp = refresh(client, pair["refresh_token"])
        assert resp.status_code == 401 and resp.json["error"]["code"] == "invalid_token"


def test_refresh_rejected_when_token_version_changed(client, create_user, session, app):
    """Even if a family survived, a token issued under an older version is refused."""
    create_user("alice")
    pair = session("alice")
    redfile(app).token_state.bump("alice")  # as after a change whose family revocation was missed
    assert refresh(client, pair["refresh_token"]).status_code == 401


def test_logout_ends_the_access_token_and_its_family(client, create_user, session):
    create_user("alice")
    pair = session("alice")
    other = session("alice")
    resp = client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=bearer(pair))
    assert resp.status_code == 204 and resp.get_data() == b""
    me = client.get("/auth/me", headers=bearer(pair))
    assert me.status_code == 401 and me.json["error"]["code"] == "token_revoked"
    assert refresh(client, pair["refresh_token"]).status_code == 401
    # Other sessions go on.
    assert client.get("/auth/me", headers=bearer(other)).status_code == 200
    assert refresh(client, other["refresh_token"]).status_code == 200


def test_logout_without_body(client, create_user, session):
    create_user("alice")
    pair = session("alice")
    assert client.post("/auth/logout", headers=bearer(pair)).status_code == 204
    assert client.get("/auth/me", headers=bearer(pair)).status_code == 401
    assert refresh(client, pair["refresh_token"]).status_code == 200  # not given, so not revoked


def test_logout_cannot_revoke_someone_elses_family(client, create_user, session, events):
    create_user("alice")
    create_user("bob")
    alice, bob = session("alice"), session("bob")
    resp = client.post("/auth/logout", json={"refresh_token": bob["refresh_token"]}, headers=bearer(alice))
    assert resp.status_code == 204
    assert events.named("permission_denied")[-1]["username"] == "alice"
    assert refresh(client, bob["refresh_token"]).status_code == 200


def test_logout_needs_a_token(client):
    assert client.post("/auth/logout", json={}).status_code == 401


def test_password_change_ends_other_sessions(client, create_user, session, login):
    create_user("alice")
    here, elsewhere = session("alice"), session("alice")
    resp = client.post("/auth/password", json={"current_password": "password-123", "new_password": "a-new-password"}, headers=bearer(here))
    assert resp.status_code == 200
    fresh = resp.json
    assert set(fresh) == {"access_token", "refresh_token", "token_type", "expires_in"}
    for old in (here, elsewhere):
        me = client.get("/auth/me", headers=bearer(old))
        assert me.status_code == 401 and me.json["error"]["code"] == "token_revoked"
        assert refresh(client, old["refresh_token"]).status_code == 401
    assert client.get("/auth/me", headers=bearer(fresh)).status_code == 200
    assert refresh(client, fresh["refresh_token"]).status_code == 200
    assert login("alice", "password-123").status_code == 401
    assert login("alice", "a-new-password").status_code == 200


def test_password_change_wrong_current_or_weak_new(client, create_user, session):
    create_user("alice")
    pair = session("alice")
    wrong = client.post(
        "/auth/password", json={"current_password": "not-it-at-all", "new_password": "a-new-password"}, headers=bearer(pair)
    )
    assert wrong.status_code == 401 and wrong.json["error"]["code"] == "invalid_credentials"
    weak = client.post("/auth/password", json={"current_password": "password-123", "new_password": "short"}, headers=bearer(pair))
    assert weak.status_code == 422 and weak.json["error"]["code"] == "validation_error"
    assert "new_password" in weak.json["error"]["details"]["json"]
    # Neither changed anything: the session still works.
    assert client.get("/auth/me", headers=bearer(pair)).status_code == 200
