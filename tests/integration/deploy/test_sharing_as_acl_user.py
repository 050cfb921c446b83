"""Every sharing command (its Lua scripts included) is allowed to the files ACL user."""

from __future__ import annotations

from redfile_auth import create_app as create_auth
from redfile_dev.testing import auth_header, settings_overrides, user_account, user_token
from redfile_files import create_app as create_files


def test_sharing_runs_as_the_files_user(acl_redis, ops, serve):
    auth = create_auth(  # files asks auth who a recipient is
        **settings_overrides(
            acl_redis.url,
            redis_username="redfile-auth",
            redis_password=acl_redis.passwords["redfile-auth"],
            admin_password="bootstrap-" + "p" * 12,
            argon2_time_cost=1,
            argon2_memory_kib=64,
            argon2_parallelism=1,
        )
    )
    app = create_files(
        **settings_overrides(
            acl_redis.url,
            redis_username="redfile-files",
            redis_password=acl_redis.passwords["redfile-files"],
            sweep_interval=0,
            share_password_max_failures=1,
            auth_url=serve(auth),
        )
    )
    client = app.test_client()
    settings = app.extensions["redfile"].settings
    alice, bob = (auth_header(user_token(settings, ops, name, uid=user_account(ops, name))) for name in ("alice", "bob"))
    f = client.post("/texts", headers=alice, json={"name": "t.txt", "content": "shared"}).json
    link = client.post(f"/files/{f['id']}/shares", headers=alice, json={"password": "pw", "max_downloads": 2, "expires_in": 60}).json
    path = f"/s/{link['token']}"
    assert client.get(path, headers={"X-Share-Password": "pw"}).data == b"shared"
    assert client.get(path, headers={"X-Share-Password": "no"}).status_code == 401
    assert client.get(path, headers={"X-Share-Password": "pw"}).status_code == 429
    assert client.get(f"{path}/qr.svg").status_code == 200
    assert client.get("/shares", headers=alice).json["items"][0]["downloads"] == 1
    assert client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"}).status_code == 201
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).data == b"shared"
    assert client.get("/shared-with-me", headers=bob).json["items"][0]["id"] == f["id"]
    assert client.post("/files/zip", headers=bob, json={"file_ids": [f["id"]]}).status_code == 200
    burn = client.post("/texts", headers=alice, json={"content": "once"}).json
    once = client.post(f"/files/{burn['id']}/shares", headers=alice, json={"burn_after_read": True}).json
    assert client.get(f"/s/{once['token']}").data == b"once"
    limited = client.post(f"/files/{f['id']}/shares", headers=alice, json={"max_downloads": 1}).json
    assert client.get(f"/s/{limited['token']}").data == b"shared"
    assert client.get(f"/s/{limited['token']}", headers={"Range": "bytes=3-"}).data == b"red"  # a resume: its allowance spent
    assert client.delete(f"/shares/{link['id']}", headers=alice).status_code == 204
    assert client.delete(f"/files/{f['id']}/recipients/bob", headers=alice).status_code == 204
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    assert client.delete(f"/files/{f['id']}", headers=alice).status_code == 204
    assert client.get("/shared-with-me", headers=bob).json["items"] == []
    violations = [e for e in ops.acl_log() if e.get("object") != "client|setinfo"]
    assert violations == []
