"""The admin API end to end against the real auth and files apps on loopback (docs/contracts.md).

Auth, files and the admin share one real Redis, as in production, so the
token revocation that auth writes is what the admin service reads.  These
tests need auth and files to implement the contract; nothing else about
them is assumed, except auth's start-up settings (ADMIN_PASSWORD, argon2
cost) and ``Redfile.upload``, which uses files' public upload API
(/upload_chunk without file_id, then /upload_complete; not part of
docs/contracts.md).
"""

from __future__ import annotations

import pytest
import requests

from redfile_dev.testing import auth_header, settings_overrides

from .conftest import LateApp

USER_FIELDS = {"username", "role", "active", "created_at", "updated_at"}
FILE_FIELDS = {"id", "name", "size", "owner", "created_at", "updated_at", "mime_type", "sha256", "kind"}


class Redfile:
    """auth and files served on loopback, the admin app as a test client, and a few user-side helpers."""

    def __init__(self, auth_url, files_url, admin_app, admin_headers, settings=None, redis=None):
        self.auth_url, self.files_url = auth_url, files_url
        self.settings, self.redis = settings, redis
        self.admin = admin_app.test_client()
        self.root = admin_headers

    def create(self, username, password="pw-" + "x" * 12, role="user"):
        resp = self.admin.post("/admin/users", json={"username": username, "password": password, "role": role}, headers=self.root)
        assert resp.status_code == 201, resp.get_json()
        return resp.get_json()

    def member(self, username) -> dict[str, str]:
        """The headers of a new account of ``username`` created straight in auth's keys (not through the admin)."""
        from redfile_dev.testing import user_account, user_token

        return auth_header(user_token(self.settings, self.redis, username, uid=user_account(self.redis, username)))

    def login(self, username, password="pw-" + "x" * 12) -> requests.Response:
        return requests.post(f"{self.auth_url}/auth/login", json={"username": username, "password": password}, timeout=10)

    def token(self, username, password="pw-" + "x" * 12) -> dict[str, str]:
        resp = self.login(username, password)
        assert resp.status_code == 200, resp.text
        return auth_header(resp.json()["access_token"])

    def upload(self, headers, name: str, data: bytes) -> None:
        """Store one small file as its owner, through files' public chunked-upload API (one chunk)."""
        resp = requests.post(
            f"{self.files_url}/upload_chunk",
            headers=headers,
            data={"chunk_index": "0", "total_chunks": "1"},
            files={"chunk_data": (name, data, "application/octet-stream")},
            timeout=10,
        )
        assert resp.status_code in (200, 201), resp.text
        resp = requests.post(
            f"{self.files_url}/upload_complete",
            headers=headers,
            json={"file_id": resp.json()["file_id"], "name": name, "mime_type": "text/plain", "total_size": len(data)},
            timeout=10,
        )
        assert resp.status_code in (200, 201), resp.text

    def all_pages(self, path, limit=1, **params) -> list[dict]:
        items, cursor = [], None
        for _ in range(100):
            query = {"limit": limit, **params, **({"cursor": cursor} if cursor else {})}
            resp = self.admin.get(path, query_string=query, headers=self.root)
            assert resp.status_code == 200, resp.get_json()
            page = resp.get_json()
            assert len(page["items"]) <= limit
            items += page["items"]
            cursor = page["next_cursor"]
            if not cursor:
                return items
        raise AssertionError("pagination did not end")


@pytest.fixture
def rf(serve, redis_url, redis_client, make_admin, mint):
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app as create_files

    auth_slot, files_slot = LateApp(), LateApp()
    urls = {"auth_url": serve(auth_slot), "files_url": serve(files_slot)}
    # Auth-only settings: its bootstrap admin needs a password; cheap hashing keeps the tests fast.
    auth_slot.app = create_auth(
        **settings_overrides(
            redis_url, **urls, admin_password="bootstrap-" + "p" * 12, argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1
        )
    )
    files_slot.app = create_files(**settings_overrides(redis_url, **urls, sweep_interval=0))  # no sweeper thread outliving the test
    admin_app = make_admin(**urls)
    settings = auth_slot.app.extensions["redfile"].settings
    return Redfile(urls["auth_url"], urls["files_url"], admin_app, mint(admin_app, "root", role="admin"), settings, redis_client)


def test_create_get_and_list_users(rf):
    ann = rf.create("ann-int")
    assert set(ann) == USER_FIELDS
    assert ann["username"] == "ann-int" and ann["role"] == "user" and ann["active"] is True
    assert rf.create("bea-int", role="admin")["role"] == "admin"

    dup = rf.admin.post("/admin/users", json={"username": "ann-int", "password": "pw-" + "y" * 12}, headers=rf.root)
    assert dup.status_code == 409 and dup.get_json()["error"]["code"] == "user_exists"

    got = rf.admin.get("/admin/users/ann-int", headers=rf.root)
    assert got.status_code == 200 and got.get_json() == ann

    missing = rf.admin.get("/admin/users/nobody-int", headers=rf.root)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "user_not_found"

    names = [u["username"] for u in rf.all_pages("/admin/users", limit=1)]
    assert names == sorted(names) and {"ann-int", "bea-int"} <= set(names)
    assert rf.login("ann-int").status_code == 200  # the password was set


def test_role_change_takes_effect_at_once(rf):
    rf.create("cat-int")
    before = rf.token("cat-int")
    assert rf.admin.get("/admin/users", headers=before).status_code == 403

    resp = rf.admin.post("/admin/roles", json={"username": "cat-int", "role": "admin"}, headers=rf.root)
    assert resp.status_code == 200 and resp.get_json()["role"] == "admin"
    stale = rf.admin.get("/admin/users", headers=before)
    assert stale.status_code == 401 and stale.get_json()["error"]["code"] == "token_revoked"
    assert rf.admin.get("/admin/users", headers=rf.token("cat-int")).status_code == 200

    missing = rf.admin.post("/admin/roles", json={"username": "nobody-int", "role": "admin"}, headers=rf.root)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "user_not_found"


def test_disable_enable_and_reset_password(rf):
    rf.create("dan-int", role="admin")
    dan = rf.token("dan-int")
    assert rf.admin.get("/admin/users", headers=dan).status_code == 200

    off = rf.admin.patch("/admin/users/dan-int", json={"active": False}, headers=rf.root)
    assert off.status_code == 200 and off.get_json()["active"] is False
    assert rf.admin.get("/admin/users", headers=dan).status_code == 401  # sessions end at once
    assert rf.login("dan-int").status_code != 200

    on = rf.admin.patch("/admin/users/dan-int", json={"active": True}, headers=rf.root)
    assert on.status_code == 200 and on.get_json()["active"] is True
    dan = rf.token("dan-int")

    reset = rf.admin.patch("/admin/users/dan-int", json={"password": "pw-new-" + "z" * 12}, headers=rf.root)
    assert reset.status_code == 200 and "password" not in reset.get_json()
    assert rf.admin.get("/admin/users", headers=dan).status_code == 401
    assert rf.login("dan-int").status_code == 401
    assert rf.login("dan-int", "pw-new-" + "z" * 12).status_code == 200


def test_an_admin_cannot_delete_demote_or_disable_themselves(rf):
    rf.create("eve-int", role="admin")
    eve = rf.token("eve-int")
    for method, path, body in (
        ("delete", "/admin/users/eve-int", None),
        ("patch", "/admin/users/eve-int", {"active": False}),
        ("post", "/admin/roles", {"username": "eve-int", "role": "user"}),
    ):
        resp = getattr(rf.admin, method)(path, json=body, headers=eve)
        assert resp.status_code == 409 and resp.get_json()["error"]["code"] == "conflict"
    user = rf.admin.get("/admin/users/eve-int", headers=rf.root).get_json()
    assert user["role"] == "admin" and user["active"] is True
    assert rf.admin.get("/admin/users", headers=eve).status_code == 200  # her session is intact


def test_list_and_delete_files(rf):
    rf.create("fay-int")
    rf.create("gus-int")
    fay, gus = rf.token("fay-int"), rf.token("gus-int")
    rf.upload(fay, "one.txt", b"one")
    rf.upload(fay, "two.txt", b"two!")
    rf.upload(gus, "three.txt", b"three")

    everything = rf.all_pages("/admin/files", limit=1)
    assert {(f["owner"], f["name"]) for f in everything} >= {("fay-int", "one.txt"), ("fay-int", "two.txt"), ("gus-int", "three.txt")}
    assert all(set(f) == FILE_FIELDS for f in everything)
    stamps = [f["created_at"] for f in everything]
    assert stamps == sorted(stamps, reverse=True)  # newest first

    fays = rf.all_pages("/admin/files", limit=50, owner="fay-int")
    assert sorted(f["name"] for f in fays) == ["one.txt", "two.txt"]
    target = next(f for f in fays if f["name"] == "one.txt")
    assert target["size"] == 3

    assert rf.admin.delete(f"/admin/files/{target['id']}", headers=rf.root).status_code == 204
    again = rf.admin.delete(f"/admin/files/{target['id']}", headers=rf.root)
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "file_not_found"
    assert [f["name"] for f in rf.all_pages("/admin/files", limit=50, owner="fay-int")] == ["two.txt"]


def test_deleting_a_user_deletes_their_files(rf):
    rf.create("hal-int")
    rf.create("ida-int")
    hal = rf.token("hal-int")
    rf.upload(hal, "a.txt", b"a")
    rf.upload(hal, "b.txt", b"bb")
    rf.upload(rf.token("ida-int"), "c.txt", b"c")

    resp = rf.admin.delete("/admin/users/hal-int", headers=rf.root)
    assert resp.status_code == 204
    assert rf.admin.get("/admin/users/hal-int", headers=rf.root).status_code == 404
    assert rf.all_pages("/admin/files", limit=50, owner="hal-int") == []
    assert [f["name"] for f in rf.all_pages("/admin/files", limit=50, owner="ida-int")] == ["c.txt"]
    assert rf.login("hal-int").status_code == 401

    again = rf.admin.delete("/admin/users/hal-int", headers=rf.root)
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "user_not_found"


def test_an_admin_sets_a_quota_that_files_enforces(rf):
    rf.create("qat-int")
    user = rf.token("qat-int")
    default = rf.admin.get("/admin/users/qat-int/quota", headers=rf.root)
    assert default.status_code == 200 and default.get_json()["quota_is_default"] is True

    resp = rf.admin.put("/admin/users/qat-int/quota", json={"quota_bytes": 10, "max_file_bytes": 8}, headers=rf.root)
    assert resp.status_code == 200
    assert resp.get_json() | {} == {
        "username": "qat-int",
        "quota_bytes": 10,
        "max_file_bytes": 8,
        "used_bytes": 0,
        "reserved_bytes": 0,
        "available_bytes": 10,
        "quota_is_default": False,
        "max_file_is_default": False,
    }
    big = requests.post(f"{rf.files_url}/uploads", headers=user, json={"name": "a", "total_size": 9}, timeout=10)
    assert big.status_code == 413 and big.json()["error"]["code"] == "payload_too_large"
    rf.upload(user, "six.txt", b"123456")
    over = requests.post(f"{rf.files_url}/uploads", headers=user, json={"name": "b", "total_size": 5}, timeout=10)
    assert over.status_code == 413 and over.json()["error"]["code"] == "quota_exceeded"
    assert rf.admin.get("/admin/users/qat-int/quota", headers=rf.root).get_json()["used_bytes"] == 6

    # back to the defaults: the upload fits again
    assert rf.admin.put("/admin/users/qat-int/quota", json={"quota_bytes": None}, headers=rf.root).get_json()["quota_is_default"]
    assert requests.post(f"{rf.files_url}/uploads", headers=user, json={"name": "b", "total_size": 5}, timeout=10).status_code == 201

    missing = rf.admin.put("/admin/users/nobody-int/quota", json={"quota_bytes": 1}, headers=rf.root)
    assert missing.status_code == 404 and missing.get_json()["error"]["code"] == "user_not_found"


def test_a_name_created_again_before_the_last_clean_up_pass_keeps_its_new_files(rf, monkeypatch):
    """The pass after the account is deleted (for a request that was past its token check) spares an account created meanwhile."""
    from redfile_admin.upstream import AuthUsers

    rf.create("gus-int")
    rf.upload(rf.token("gus-int"), "old.txt", b"old")
    delete = AuthUsers.delete

    def delete_then_taken_again(self, username):
        delete(self, username)
        rf.upload(rf.member(username), "new.txt", b"new")  # the free name is taken, and used, at once

    monkeypatch.setattr(AuthUsers, "delete", delete_then_taken_again)
    assert rf.admin.delete("/admin/users/gus-int", headers=rf.root).status_code == 204
    assert [f["name"] for f in rf.all_pages("/admin/files", owner="gus-int")] == ["new.txt"]


def test_repeating_a_deletion_when_the_name_is_taken_again_meanwhile_leaves_the_new_accounts_files(rf, monkeypatch):
    """The account is gone (an earlier request deleted it); the name is taken again before the repeat reaches files."""
    from redfile_admin.upstream import FilesCatalogue

    rf.create("hal-int")
    rf.upload(rf.token("hal-int"), "old.txt", b"old")
    assert rf.admin.delete("/admin/users/hal-int", headers=rf.root).status_code == 204
    forget = FilesCatalogue.delete_owned_by

    def taken_again_first(self, username, *args, **kwargs):
        rf.upload(rf.member(username), "new.txt", b"new")
        return forget(self, username, *args, **kwargs)

    monkeypatch.setattr(FilesCatalogue, "delete_owned_by", taken_again_first)
    again = rf.admin.delete("/admin/users/hal-int", headers=rf.root)
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "user_not_found"
    assert [f["name"] for f in rf.all_pages("/admin/files", owner="hal-int")] == ["new.txt"]
