"""The admin service as a client of auth and files: tokens, paths, parameters and failure modes.

These run against ``Recorder`` servers on loopback, so they do not depend on
auth or files being finished; what the calls *do* is tested in
test_with_real_services.py.
"""

import logging

import pytest

from redfile_dev.redis_server import free_port

from .conftest import FILE, USER, Recorder


@pytest.fixture
def stack(serve, make_admin, mint):
    """An admin app wired to recording auth and files servers."""

    class Stack:
        def __init__(self, auth_answers=(), files_answers=(), auth_keys=None):
            kwargs = {"keys": auth_keys} if auth_keys else {}
            self.auth = Recorder("auth", auth_answers, **kwargs)
            self.files = Recorder("files", files_answers)
            self.app = make_admin(serve(self.auth), serve(self.files))
            self.client = self.app.test_client()
            self.admin = mint(self.app, "root", role="admin")

    return Stack


def assert_service_token(call, target):
    assert call.claims is not None, "the token was refused by the target"
    assert call.claims.aud == f"redfile-{target}"
    assert call.claims.sub == "admin" and call.claims.iss == "redfile-admin" and call.claims.typ == "service"
    assert call.claims.exp - call.claims.iat <= 60


@pytest.mark.parametrize(
    "method, path, body, answer, expected_call",
    [
        ("post", "/admin/users", {"username": "ann", "password": "pw"}, (201, USER), ("POST", "/internal/users")),
        ("get", "/admin/users", None, (200, {"items": [USER], "next_cursor": None}), ("GET", "/internal/users")),
        ("get", "/admin/users/ann", None, (200, USER), ("GET", "/internal/users/ann")),
        ("patch", "/admin/users/ann", {"active": False}, (200, USER), ("PATCH", "/internal/users/ann")),
        ("post", "/admin/roles", {"username": "ann", "role": "admin"}, (200, USER), ("PATCH", "/internal/users/ann")),
        ("delete", "/admin/users/ann", None, (200, USER), ("PATCH", "/internal/users/ann")),  # disabled first
    ],
)
def test_auth_calls_carry_a_service_token_addressed_to_auth(stack, method, path, body, answer, expected_call):
    s = stack(auth_answers=[answer, (204, None)], files_answers=[(200, {"deleted": 0})] * 2)
    resp = getattr(s.client, method)(path, json=body, headers=s.admin)
    assert resp.status_code < 300, resp.get_json()
    call = s.auth.calls[0]
    assert (call.method, call.path) == expected_call
    assert_service_token(call, "auth")


@pytest.mark.parametrize(
    "method, path, answer, expected_call",
    [
        ("get", "/admin/files", (200, {"items": [FILE], "next_cursor": None}), ("GET", "/internal/files")),
        ("delete", "/admin/files/f1", (204, None), ("DELETE", "/internal/files/f1")),
        ("delete", "/admin/users/ann", (200, {"deleted": 2, "shares_removed": 0}), ("DELETE", "/internal/owners/ann/files")),
        ("get", "/admin/users/ann/quota", (200, {"username": "ann"}), ("GET", "/internal/owners/ann/quota")),
        ("put", "/admin/users/ann/quota", (200, {"username": "ann"}), ("PUT", "/internal/owners/ann/quota")),
    ],
)
def test_files_calls_carry_a_service_token_addressed_to_files(stack, method, path, answer, expected_call):
    s = stack(auth_answers=[(200, USER), (204, None)], files_answers=[answer, answer])
    body = {"quota_bytes": 5000} if method == "put" else None
    resp = getattr(s.client, method)(path, headers=s.admin, json=body)
    assert resp.status_code < 300, resp.get_json()
    call = s.files.calls[0]
    assert (call.method, call.path) == expected_call
    assert_service_token(call, "files")


def test_bodies_and_parameters_are_passed_as_the_contract_says(stack):
    s = stack(
        auth_answers=[(201, USER), (200, USER), (200, USER), (200, {"items": [], "next_cursor": None})],
        files_answers=[(200, {"items": [], "next_cursor": None})],
    )
    s.client.post("/admin/users", json={"username": "ann", "password": "pw"}, headers=s.admin)
    s.client.post("/admin/roles", json={"username": "ann", "role": "admin"}, headers=s.admin)
    s.client.patch("/admin/users/ann", json={"password": "new", "active": True}, headers=s.admin)
    s.client.get("/admin/users?limit=2&cursor=abc", headers=s.admin)
    s.client.get("/admin/files?owner=ann&limit=5", headers=s.admin)
    assert [c.json for c in s.auth.calls[:3]] == [
        {"username": "ann", "password": "pw", "role": "user"},
        {"role": "admin"},
        {"password": "new", "active": True},
    ]
    assert s.auth.calls[3].query == {"limit": "2", "cursor": "abc"}
    assert s.files.calls[0].query == {"owner": "ann", "limit": "5"}


def test_quota_bodies_are_passed_as_the_contract_says(stack):
    s = stack(auth_answers=[(200, USER)] * 2, files_answers=[(200, {"username": "ann"})] * 2)
    s.client.put("/admin/users/ann/quota", json={"quota_bytes": 5000, "max_file_bytes": 100}, headers=s.admin)
    s.client.put("/admin/users/ann/quota", json={"quota_bytes": None}, headers=s.admin)
    assert [c.json for c in s.files.calls] == [{"quota_bytes": 5000, "max_file_bytes": 100}, {"quota_bytes": None, "max_file_bytes": None}]


def test_a_username_is_one_encoded_path_segment(stack):
    s = stack(auth_answers=[(200, USER)])
    resp = s.client.get("/admin/users/a%3Fb%20c", headers=s.admin)
    assert resp.status_code == 200
    assert s.auth.calls[0].path == "/internal/users/a%3Fb%20c" and s.auth.calls[0].query == {}


def test_deleting_a_user_disables_the_account_then_removes_the_files_then_the_account(stack):
    done = (200, {"deleted": 4, "shares_removed": 1})
    s = stack(auth_answers=[(200, USER), (204, None)], files_answers=[done, (200, {"deleted": 0, "shares_removed": 0})])
    resp = s.client.delete("/admin/users/ann", headers=s.admin)
    assert resp.status_code == 204 and resp.data == b""
    assert [(c.method, c.path, c.json) for c in s.auth.calls] == [
        ("PATCH", "/internal/users/ann", {"active": False}),
        ("DELETE", "/internal/users/ann", None),
    ]
    assert [(c.method, c.path) for c in s.files.calls] == [("DELETE", "/internal/owners/ann/files")] * 2


def test_when_files_fail_the_account_stays_disabled_and_a_retry_finishes(stack):
    s = stack(
        auth_answers=[(200, USER), (200, USER), (204, None)],
        files_answers=[(500, {"error": {"code": "internal_error", "message": "x"}}), (200, {"deleted": 2}), (200, {"deleted": 0})],
    )
    first = s.client.delete("/admin/users/ann", headers=s.admin)
    assert first.status_code == 502
    assert "repeat the request" in first.get_json()["error"]["message"]
    assert [c.method for c in s.auth.calls] == ["PATCH"]  # the name stays taken while files are left
    second = s.client.delete("/admin/users/ann", headers=s.admin)
    assert second.status_code == 204
    assert [c.method for c in s.auth.calls] == ["PATCH", "PATCH", "DELETE"] and len(s.files.calls) == 3


def test_when_the_account_is_gone_already_a_retry_removes_what_files_still_holds(stack):
    gone = (404, {"error": {"code": "user_not_found", "message": "No such user."}})
    s = stack(
        auth_answers=[gone, gone], files_answers=[(200, {"deleted": 2, "shares_removed": 0}), (200, {"deleted": 0, "shares_removed": 0})]
    )
    assert s.client.delete("/admin/users/ann", headers=s.admin).status_code == 204
    assert s.client.delete("/admin/users/ann", headers=s.admin).status_code == 404  # nothing left anywhere


def test_auth_down_is_a_502_bad_gateway(make_admin, mint):
    app = make_admin(f"http://127.0.0.1:{free_port()}", f"http://127.0.0.1:{free_port()}", service_retries=1)
    headers = mint(app, "root", role="admin")
    for method, path in (("get", "/admin/users"), ("get", "/admin/files")):
        resp = getattr(app.test_client(), method)(path, headers=headers)
        assert resp.status_code == 502
        assert resp.get_json()["error"]["code"] == "bad_gateway"


def test_auth_503_is_passed_on_as_503_after_retries(stack):
    unavailable = (503, {"error": {"code": "service_unavailable", "message": "busy"}})
    s = stack(auth_answers=[unavailable] * 10)
    resp = s.client.get("/admin/users", headers=s.admin)
    assert resp.status_code == 503
    assert resp.get_json()["error"]["code"] == "service_unavailable" and resp.headers["Retry-After"]
    assert len(s.auth.calls) == 4  # the first try and SERVICE_RETRIES=3 more


def test_auth_500_is_a_502(stack):
    s = stack(auth_answers=[(500, {"error": {"code": "internal_error", "message": "x"}})])
    resp = s.client.get("/admin/users/ann", headers=s.admin)
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "bad_gateway"


def test_auth_refusing_our_service_token_is_a_502_not_a_401_to_the_admin(stack):
    s = stack(auth_keys="other:" + "z" * 40)  # auth trusts another key than the admin signs with
    resp = s.client.get("/admin/users", headers=s.admin)
    assert s.auth.calls and s.auth.calls[0].claims is None
    assert resp.status_code == 502 and resp.get_json()["error"]["code"] == "bad_gateway"


@pytest.mark.parametrize("error, status", [("user_exists", 409), ("validation_error", 422), ("user_not_found", 404)])
def test_4xx_errors_of_auth_pass_through(stack, error, status):
    s = stack(auth_answers=[(status, {"error": {"code": error, "message": "from auth", "details": {"x": 1}}})])
    resp = s.client.post("/admin/users", json={"username": "ann", "password": "pw"}, headers=s.admin)
    assert resp.status_code == status
    assert resp.get_json()["error"] == {"code": error, "message": "from auth", "details": {"x": 1}}


def test_answers_keep_only_the_contract_fields(stack):
    leaky = {**USER, "password_hash": "$argon2id$...", "token_version": "abc"}
    s = stack(auth_answers=[(200, leaky), (200, {"items": [leaky], "next_cursor": "n2"})])
    one = s.client.get("/admin/users/ann", headers=s.admin).get_json()
    page = s.client.get("/admin/users", headers=s.admin).get_json()
    assert one == USER
    assert page == {"items": [USER], "next_cursor": "n2"}


def test_refused_requests_never_reach_auth_or_files(stack, mint):
    s = stack()
    user = mint(s.app, "bob")
    assert s.client.get("/admin/users", headers=user).status_code == 403
    assert s.client.delete("/admin/files/f1", headers=user).status_code == 403
    assert s.client.delete("/admin/users/root", headers=s.admin).status_code == 409
    assert s.client.patch("/admin/users/root", json={"active": False}, headers=s.admin).status_code == 409
    assert s.client.post("/admin/roles", json={"username": "root", "role": "user"}, headers=s.admin).status_code == 409
    assert s.auth.calls == [] and s.files.calls == []


def test_an_admin_may_reset_their_own_password_and_keep_their_role(stack):
    s = stack(auth_answers=[(200, {**USER, "username": "root", "role": "admin"})] * 2)
    assert s.client.patch("/admin/users/root", json={"password": "new"}, headers=s.admin).status_code == 200
    assert s.client.post("/admin/roles", json={"username": "root", "role": "admin"}, headers=s.admin).status_code == 200


def test_admin_actions_are_logged_with_actor_and_target_never_the_password(stack, caplog):
    s = stack(
        auth_answers=[(201, USER), (200, USER), (200, USER), (204, None)], files_answers=[(204, None), (200, {"deleted": 1}), (200, {})]
    )
    caplog.set_level(logging.INFO)
    s.client.post("/admin/users", json={"username": "ann", "password": "pw-very-secret"}, headers=s.admin)
    s.client.patch("/admin/users/ann", json={"password": "pw-other-secret"}, headers=s.admin)
    s.client.delete("/admin/files/f1", headers=s.admin)
    s.client.delete("/admin/users/ann", headers=s.admin)
    events = {r.msg["event"]: r.msg for r in caplog.records if isinstance(r.msg, dict) and str(r.msg.get("event")).startswith("admin_")}
    assert set(events) == {"admin_user_created", "admin_user_updated", "admin_file_deleted", "admin_user_deleted"}
    assert all(e["actor"] == "root" for e in events.values())
    assert events["admin_file_deleted"]["target"] == "f1" and events["admin_user_deleted"]["target"] == "ann"
    assert "secret" not in caplog.text and not any("secret" in repr(r.msg) for r in caplog.records)
