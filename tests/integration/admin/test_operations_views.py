"""GET /admin/stats, GET /admin/users/<name>/usage and GET /admin/audit (docs/contracts.md).

The first tests run against recording servers: which internal endpoints the admin service calls,
with which token and parameters, and what it does when one fails.  The rest run against the real
auth and files apps (one real Redis).
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from redfile_dev.testing import auth_header, settings_overrides

from .conftest import USER, LateApp, Recorder

COUNTS = {"files": 3, "bytes_stored": 300, "active_uploads": 1}
QUOTA = {
    "username": "ann",
    "quota_bytes": 1000,
    "max_file_bytes": 500,
    "used_bytes": 300,
    "reserved_bytes": 0,
    "available_bytes": 700,
    "quota_is_default": True,
    "max_file_is_default": True,
}


@pytest.fixture
def stack(serve, make_admin, mint):
    class Stack:
        def __init__(self, auth_answers=(), files_answers=()):
            self.auth = Recorder("auth", auth_answers)
            self.files = Recorder("files", files_answers)
            self.app = make_admin(serve(self.auth), serve(self.files), service_retries=0)
            self.client = self.app.test_client()
            self.admin = mint(self.app, "root", role="admin")

    return Stack


def test_stats_asks_auth_and_files_with_service_tokens(stack):
    s = stack(auth_answers=[(200, {"users": 4})], files_answers=[(200, COUNTS)])
    resp = s.client.get("/admin/stats", headers=s.admin)
    assert resp.status_code == 200, resp.get_json()
    body = resp.get_json()
    assert body["users"] == {"total": 4} and body["files"] == COUNTS and body["unavailable"] == []
    assert body["redis"]["up"] is True and body["redis"]["used_memory_bytes"] > 0
    assert set(body["redis"]["persistence"]) >= {"aof_enabled", "aof_last_write_ok", "rdb_last_bgsave_ok", "rdb_last_save_time"}
    [(auth_call)], [(files_call)] = s.auth.calls, s.files.calls
    assert (auth_call.method, auth_call.path, auth_call.claims.aud) == ("GET", "/internal/stats", "redfile-auth")
    assert (files_call.method, files_call.path, files_call.query, files_call.claims.aud) == ("GET", "/internal/stats", {}, "redfile-files")


def test_stats_still_answers_when_files_is_down(stack):
    s = stack(auth_answers=[(200, {"users": 4})], files_answers=[(503, {"error": {"code": "service_unavailable", "message": "x"}})])
    body = s.client.get("/admin/stats", headers=s.admin).get_json()
    assert body["users"] == {"total": 4} and body["files"] is None and body["unavailable"] == ["files"]


def test_usage_asks_auth_then_files_for_the_owner(stack):
    s = stack(auth_answers=[(200, USER)], files_answers=[(200, COUNTS), (200, QUOTA)])
    resp = s.client.get("/admin/users/ann/usage", headers=s.admin)
    assert resp.status_code == 200, resp.get_json()
    assert resp.get_json() == {"username": "ann", **COUNTS, "quota": QUOTA}
    assert [(c.method, c.path) for c in s.auth.calls] == [("GET", "/internal/users/ann")]
    assert [(c.method, c.path, c.query) for c in s.files.calls] == [
        ("GET", "/internal/stats", {"owner": "ann"}),
        ("GET", "/internal/owners/ann/quota", {}),
    ]


def test_usage_of_an_unknown_user_is_404_without_asking_files(stack):
    s = stack(auth_answers=[(404, {"error": {"code": "user_not_found", "message": "No such user."}})])
    resp = s.client.get("/admin/users/nobody/usage", headers=s.admin)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "user_not_found"
    assert s.files.calls == []


# -- against the real auth and files -------------------------------------------------------
PASSWORD = "pw-" + "x" * 12


@pytest.fixture
def real(serve, redis_url, make_admin, mint):
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app as create_files

    auth_slot, files_slot = LateApp(), LateApp()
    urls = {"auth_url": serve(auth_slot), "files_url": serve(files_slot)}
    auth_slot.app = create_auth(
        **settings_overrides(
            redis_url, **urls, admin_password="bootstrap-" + "p" * 12, argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1
        )
    )
    files_slot.app = create_files(**settings_overrides(redis_url, **urls, sweep_interval=0))  # no sweeper thread outliving the test
    admin = make_admin(**urls)

    class Real:
        client = admin.test_client()
        root = mint(admin, "root", role="admin")
        auth_url, files_url = urls["auth_url"], urls["files_url"]
        files_app = files_slot.app

        def create(self, username):
            resp = self.client.post("/admin/users", json={"username": username, "password": PASSWORD}, headers=self.root)
            assert resp.status_code == 201, resp.get_json()

        def login(self, username, password=PASSWORD):
            return requests.post(f"{self.auth_url}/auth/login", json={"username": username, "password": password}, timeout=10)

        def audit(self, **query):
            items, cursor = [], None
            for _ in range(100):
                resp = self.client.get("/admin/audit", query_string={**query, **({"cursor": cursor} if cursor else {})}, headers=self.root)
                assert resp.status_code == 200, resp.get_json()
                items += resp.get_json()["items"]
                cursor = resp.get_json()["next_cursor"]
                if not cursor:
                    return items
            raise AssertionError("paging did not end")

    return Real()


def test_the_audit_trail_records_who_did_what_and_pages_newest_first(real):
    start = datetime.now(UTC) - timedelta(seconds=1)
    real.create("amy-int")
    assert real.login("amy-int", "wrong-password-1").status_code == 401
    token = real.login("amy-int").json()["access_token"]
    assert real.client.post("/admin/roles", json={"username": "amy-int", "role": "admin"}, headers=real.root).status_code == 200
    assert real.client.patch("/admin/users/amy-int", json={"active": False}, headers=real.root).status_code == 200
    assert real.client.delete("/admin/users/amy-int", headers=real.root).status_code == 204

    entries = real.audit(user="amy-int", limit=2)
    assert [e["action"] for e in entries] == [
        "user.deleted",
        "user.updated",
        "role.changed",
        "login.succeeded",
        "login.failed",
        "user.created",
    ]
    by_action = {e["action"]: e for e in entries}
    assert by_action["user.created"]["actor"] == "root" and by_action["user.created"]["service"] == "admin"
    assert by_action["login.succeeded"]["actor"] == "amy-int" and by_action["login.succeeded"]["service"] == "auth"
    assert by_action["user.updated"]["details"] == {"active": False, "fields": ["active"]}
    assert by_action["user.deleted"]["details"]["files_deleted"] == 0
    assert all(e["request_id"] for e in entries)
    times = [e["time"] for e in entries]
    assert times == sorted(times, reverse=True)

    assert [e["action"] for e in real.audit(user="amy-int", action="login")] == ["login.succeeded", "login.failed"]
    assert [e["action"] for e in real.audit(action="role.changed", user="root")] == ["role.changed"]
    assert real.audit(user="amy-int", since=(datetime.now(UTC) + timedelta(minutes=1)).isoformat()) == []
    assert len(real.audit(user="amy-int", since=start.isoformat(), until=datetime.now(UTC).isoformat())) == 6
    for secret in (PASSWORD, "wrong-password-1", token):
        assert secret not in repr(entries)


def test_stats_counts_accounts_and_reads_redis(real):
    before = real.client.get("/admin/stats", headers=real.root).get_json()["users"]["total"]
    real.create("bob-int")
    stats = real.client.get("/admin/stats", headers=real.root).get_json()
    assert stats["users"] == {"total": before + 1}
    assert stats["redis"]["up"] is True and stats["redis"]["maxmemory_policy"] == "noeviction"
    assert stats["unavailable"] == [] and stats["files"] == {"files": 0, "bytes_stored": 0, "active_uploads": 0}


def upload(real, username, name, data):
    headers = auth_header(real.login(username).json()["access_token"])
    first = requests.post(
        f"{real.files_url}/upload_chunk",
        headers=headers,
        data={"chunk_index": "0", "total_chunks": "2"},
        files={"chunk_data": (name, data[:1], "application/octet-stream")},
        timeout=10,
    )
    assert first.status_code in (200, 201), first.text
    file_id = first.json()["file_id"]
    second = requests.post(
        f"{real.files_url}/upload_chunk",
        headers=headers,
        data={"file_id": file_id, "chunk_index": "1", "total_chunks": "2"},
        files={"chunk_data": (name, data[1:], "application/octet-stream")},
        timeout=10,
    )
    assert second.status_code in (200, 201), second.text
    return headers, file_id


def test_stats_and_usage_count_files_bytes_and_uploads_in_progress(real):
    real.create("cid-int")
    before = real.client.get("/admin/stats", headers=real.root).get_json()["files"]
    headers, file_id = upload(real, "cid-int", "a.txt", b"hello")
    done = requests.post(
        f"{real.files_url}/upload_complete", headers=headers, json={"file_id": file_id, "name": "a.txt", "total_size": 5}, timeout=10
    )
    assert done.status_code in (200, 201), done.text
    upload(real, "cid-int", "b.txt", b"in progress")  # not completed
    time.sleep(0.1)

    usage = real.client.get("/admin/users/cid-int/usage", headers=real.root)
    assert usage.status_code == 200, usage.get_json()
    body = usage.get_json()
    assert (body["username"], body["files"], body["bytes_stored"], body["active_uploads"]) == ("cid-int", 1, 5, 1)
    assert body["quota"]["username"] == "cid-int" and body["quota"]["quota_bytes"] >= 5
    after = real.client.get("/admin/stats", headers=real.root).get_json()["files"]
    assert after == {
        "files": before["files"] + 1,
        "bytes_stored": before["bytes_stored"] + 5,
        "active_uploads": before["active_uploads"] + 1,
    }


def test_usage_of_an_unknown_user_is_404(real):
    resp = real.client.get("/admin/users/nobody-int/usage", headers=real.root)
    assert resp.status_code == 404 and resp.get_json()["error"]["code"] == "user_not_found"
