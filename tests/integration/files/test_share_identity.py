"""A share names an account (auth's immutable id), not the text of a username (issue 18, finding 1).

auth runs for real on loopback over the same Redis; files asks it who a name is.
"""

from __future__ import annotations

from redfile_dev.testing import auth_header, user_account, user_token

from .share_helpers import files_keys


def recreate(settings, r, username: str) -> dict[str, str]:
    """The account deleted in auth (as auth deletes it) and a new one created under the same name."""
    from redfile_auth.storage import AuthStore
    from redfile_common.tokens import TokenState

    assert AuthStore(r, TokenState(r)).delete_user(username)
    return auth_header(user_token(settings, r, username, uid=user_account(r, username)))


def test_sharing_with_a_name_nobody_has_is_refused_and_stores_nothing(api, client, alice, redis_client):
    f = api.upload(alice, b"for nobody yet")
    before = files_keys(redis_client)
    resp = client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "ghost"})
    assert resp.status_code == 404 and resp.json["error"]["code"] == "user_not_found"
    resp = client.post("/send/ghost", headers=alice, json={"name": "g.txt", "data": "Z2hvc3Q="})
    assert resp.status_code == 404 and resp.json["error"]["code"] == "user_not_found"
    assert files_keys(redis_client) == before
    assert client.get(f"/files/{f['id']}/recipients", headers=alice).json == {"recipients": []}


def test_an_account_created_later_under_a_refused_name_gets_nothing(api, client, alice, settings, redis_client):
    f = api.upload(alice, b"for nobody yet")
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "ghost"})
    client.post("/send/ghost", headers=alice, json={"name": "g.txt", "data": "Z2hvc3Q="})
    ghost = auth_header(user_token(settings, redis_client, "ghost", uid=user_account(redis_client, "ghost")))
    assert client.get("/shared-with-me", headers=ghost).json["items"] == []
    assert client.get(f"/shared-with-me/{f['id']}", headers=ghost).status_code == 404


def test_a_recreated_name_inherits_no_share_even_before_any_clean_up(api, client, alice, bob, settings, redis_client):
    f = api.upload(alice, b"for the first bob")
    assert client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"}).status_code == 201
    sent = client.post("/send/bob", headers=alice, json={"name": "gift.txt", "data": "aGVsbG8="}).json
    private = client.post(f"/files/{f['id']}/shares", headers=alice, json={"visibility": "private"}).json
    assert client.get(f"/s/{private['token']}", headers=bob).status_code == 200  # the first bob may
    new_bob = recreate(settings, redis_client, "bob")  # files not told: the share still names the first bob's id
    assert client.get("/shared-with-me", headers=new_bob).json["items"] == []
    for fid in (f["id"], sent["id"]):
        assert client.get(f"/shared-with-me/{fid}", headers=new_bob).status_code == 404
        assert client.get(f"/shared-with-me/{fid}/meta", headers=new_bob).status_code == 404
    assert client.post("/files/zip", headers=new_bob, json={"file_ids": [f["id"]]}).status_code == 404
    assert client.get(f"/s/{private['token']}", headers=new_bob).status_code == 404


def test_a_token_without_an_account_id_sees_no_share(api, client, alice, bob, settings, redis_client):
    """A token minted before ids existed names no account: it reads nothing shared until refreshed."""
    f = api.upload(alice, b"shared")
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    nameless = auth_header(user_token(settings, redis_client, "bob"))
    assert client.get(f"/shared-with-me/{f['id']}", headers=nameless).status_code == 404
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 200


def test_sharing_with_yourself_is_refused(api, client, alice, redis_client):
    f = api.upload(alice, b"mine")
    for name in ("alice", "ALICE"):  # auth knows the second as alice too
        assert client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": name}).status_code == 422
    assert client.post("/send/alice", headers=alice, json={"name": "a", "data": "aGk="}).status_code == 422


def test_deleting_a_user_takes_them_off_every_share_and_a_new_account_of_the_name_gets_nothing(
    api, client, alice, bob, internal, settings, redis_client
):
    f = api.upload(alice, b"for bob", name="a.txt")
    g = api.upload(alice, b"also for bob", name="b.txt")
    for fid in (f["id"], g["id"]):
        assert client.post(f"/files/{fid}/recipients", headers=alice, json={"username": "bob"}).status_code == 201
    own = api.upload(bob, b"bob's own")
    assert (
        client.put("/internal/owners/bob/quota", headers=internal, json={"quota_bytes": 10**9, "max_file_bytes": 10**6}).status_code == 200
    )
    resp = client.delete("/internal/owners/bob/files", headers=internal)
    assert resp.status_code == 200 and resp.json == {"deleted": 1, "shares_removed": 2}
    for fid in (f["id"], g["id"]):
        assert client.get(f"/files/{fid}/recipients", headers=alice).json == {"recipients": []}
    assert not redis_client.exists("files:{u:bob}:inbox")
    assert redis_client.keys("files:{u:bob}:*") == []  # nothing kept under the name
    new_bob = recreate(settings, redis_client, "bob")
    assert client.get("/shared-with-me", headers=new_bob).json["items"] == []
    assert client.get("/files", headers=new_bob).json["items"] == []
    assert client.get(f"/files/{own['id']}", headers=new_bob).status_code == 404
    quota = client.get("/internal/owners/bob/quota", headers=internal).json
    assert quota["quota_bytes"] == settings.default_quota_bytes and quota["max_file_bytes"] == settings.max_file_bytes
    before = files_keys(redis_client)
    again = client.delete("/internal/owners/bob/files", headers=internal)
    assert again.json == {"deleted": 0, "shares_removed": 0} and files_keys(redis_client) == before


def test_removing_a_recipient_by_name_and_the_consistency_check_agree(api, client, alice, bob, domain, redis_client):
    f = api.upload(alice, b"x")
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    stored = redis_client.hgetall(f"files:{{{f['id']}}}:recipients")
    assert list(stored.values()) == [b"bob"] and len(next(iter(stored))) == 32  # the account id, and its name for listing
    assert domain.consistency_checker().check(deep=False, strict=True, max_seconds=30)["ok"]
    assert client.delete(f"/files/{f['id']}/recipients/bob", headers=alice).status_code == 204
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 404
    assert domain.consistency_checker().check(deep=False, strict=True, max_seconds=30)["ok"]


def test_a_token_without_an_account_id_does_not_empty_the_shared_with_me_list(api, client, alice, bob, settings, redis_client):
    """Listing with a token minted before ids existed shows nothing, and drops nothing (found in review)."""
    f = api.upload(alice, b"shared")
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    nameless = auth_header(user_token(settings, redis_client, "bob"))
    assert client.get("/shared-with-me", headers=nameless).json["items"] == []
    assert [item["id"] for item in client.get("/shared-with-me", headers=bob).json["items"]] == [f["id"]]


def test_unsharing_by_the_name_as_typed_when_sharing_works(api, client, alice, bob, redis_client):
    """Usernames are case-insensitive: "Bob" shared is "Bob" unshared (found in review: a 404, and bob kept reading)."""
    f = api.upload(alice, b"for Bob")
    assert client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "Bob"}).status_code == 201
    assert client.delete(f"/files/{f['id']}/recipients/Bob", headers=alice).status_code == 204
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 404


def test_sharing_with_an_account_deleted_during_the_look_up_is_a_404(api, client, alice, redis_client, monkeypatch):
    """auth read the name, then the account was gone before it had an id: user_not_found, not a 502."""
    from redfile_auth.keys import user_key
    from redfile_auth.storage import AuthStore

    user_account(redis_client, "carol")
    redis_client.hdel(user_key("carol"), "id")  # stored before ids: auth gives it one when asked
    read = AuthStore.get_user

    def read_then_deleted(self, username):
        record = read(self, username)
        self.delete_user(username)
        return record

    monkeypatch.setattr(AuthStore, "get_user", read_then_deleted)
    f = api.upload(alice, b"for carol")
    resp = client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "carol"})
    assert resp.status_code == 404 and resp.json["error"]["code"] == "user_not_found"
    assert not redis_client.exists(f"files:{{{f['id']}}}:recipients") and not redis_client.exists("files:{u:carol}:inbox")
