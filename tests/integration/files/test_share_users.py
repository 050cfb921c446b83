"""Shares with named users, "send to", deletion of shared files, zips, and that nothing else leaks."""

from __future__ import annotations

import io
import zipfile

from redfile_dev.testing import auth_header, user_token

from .share_helpers import files_keys, link_path, make_link


def test_share_with_a_user_read_only_and_remove(api, client, alice, bob):
    f = api.upload(alice, b"for bob", name="bob.txt")
    resp = client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    assert resp.status_code == 201 and resp.json == {"recipients": ["bob"]}
    assert [x["id"] for x in client.get("/shared-with-me", headers=bob).json["items"]] == [f["id"]]
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).data == b"for bob"
    assert client.get(f"/shared-with-me/{f['id']}", headers={**bob, "Range": "bytes=4-"}).data == b"bob"
    assert client.get(f"/shared-with-me/{f['id']}/meta", headers=bob).json["owner"] == "alice"
    # read-only: the owner's routes stay 404 for bob
    assert client.delete(f"/files/{f['id']}", headers=bob).status_code == 404
    assert client.post(f"/files/{f['id']}/rename", headers=bob, json={"new_name": "x"}).status_code == 404
    assert client.post(f"/files/{f['id']}/shares", headers=bob, json={}).status_code == 404
    assert client.post(f"/files/{f['id']}/recipients", headers=bob, json={"username": "carol"}).status_code == 404
    assert client.get(f"/files/{f['id']}/recipients", headers=alice).json == {"recipients": ["bob"]}
    assert client.delete(f"/files/{f['id']}/recipients/bob", headers=alice).status_code == 204
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 404
    assert client.get("/shared-with-me", headers=bob).json["items"] == []
    assert client.delete(f"/files/{f['id']}/recipients/bob", headers=alice).status_code == 404


def test_deleting_a_file_removes_every_share_of_it(api, client, alice, bob, redis_client):
    f = api.upload(alice, b"doomed")
    keep = api.upload(alice, b"kept")
    link = make_link(client, alice, f["id"], password="pw")
    kept_link = make_link(client, alice, keep["id"])
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    assert client.delete(f"/files/{f['id']}", headers=alice).status_code == 204
    assert client.get(link_path(link)).status_code == 404
    assert client.get(f"/shared-with-me/{f['id']}", headers=bob).status_code == 404
    assert client.get("/shared-with-me", headers=bob).json["items"] == []
    assert [x["id"] for x in client.get("/shares", headers=alice).json["items"]] == [kept_link["id"]]
    assert [k for k in redis_client.keys("*") if f["id"].encode() in k] == []
    assert not redis_client.hexists("files:{u:bob}:inbox", f["id"])
    assert not redis_client.hexists("files:{u:alice}:links", link["id"])


def test_send_to_a_user(client, alice, bob):
    resp = client.post("/send/bob", headers=alice, json={"name": "gift.txt", "data": "aGVsbG8="})
    assert resp.status_code == 201 and resp.json["owner"] == "alice"
    items = client.get("/shared-with-me", headers=bob).json["items"]
    assert [x["name"] for x in items] == ["gift.txt"]
    assert client.get(f"/shared-with-me/{resp.json['id']}", headers=bob).data == b"hello"
    assert client.post("/send/alice", headers=alice, json={"name": "a", "data": "aGk="}).status_code == 422


def test_zip_of_several_files_streamed(api, client, alice, bob):
    a = api.upload(alice, b"a" * 300, name="same.txt")
    b = api.upload(alice, b"b" * 5, name="same.txt")
    shared = api.upload(bob, b"from bob", name="bob.txt")
    client.post(f"/files/{shared['id']}/recipients", headers=bob, json={"username": "alice"})
    resp = client.post("/files/zip", headers=alice, json={"file_ids": [a["id"], b["id"], shared["id"]], "name": "all.zip"})
    assert resp.status_code == 200 and resp.mimetype == "application/zip" and resp.is_streamed
    assert resp.headers["Content-Length"] == str(len(resp.data))
    z = zipfile.ZipFile(io.BytesIO(resp.data))
    assert {n: z.read(n) for n in z.namelist()} == {"same.txt": b"a" * 300, "same (2).txt": b"b" * 5, "bob.txt": b"from bob"}
    other = api.upload(bob, b"not shared")
    assert client.post("/files/zip", headers=alice, json={"file_ids": [a["id"], other["id"]]}).status_code == 404


def test_no_link_or_share_exposes_any_other_file(api, client, alice, bob, settings, redis_client):
    carol = auth_header(user_token(settings, redis_client, "carol"))
    mine = api.upload(alice, b"shared one", name="shared.txt")
    secret = api.upload(alice, b"alice private", name="private.txt")
    bobs = api.upload(bob, b"bob private", name="bob.txt")
    link = make_link(client, alice, mine["id"])
    client.post(f"/files/{mine['id']}/recipients", headers=alice, json={"username": "bob"})
    before = files_keys(redis_client)
    # the link serves its file only, whatever is appended
    for path in (
        f"{link_path(link)}/{secret['id']}",
        f"/s/{link['token']}{secret['id']}",
        f"/s/{secret['id']}",
        f"/s/{link['id']}",
        f"/s/{mine['composite_blake3'][:43]}",
    ):
        assert client.get(path).status_code == 404, path
    meta = client.get(f"{link_path(link)}/meta").json
    assert set(meta) == {"name", "size", "mime_type", "sha256", "kind", "expires_at", "downloads_left", "preview"}
    # a recipient reads the shared file and nothing else of the owner's
    for fid in (secret["id"], bobs["id"]):
        assert client.get(f"/shared-with-me/{fid}", headers=carol).status_code == 404
        assert client.get(f"/shared-with-me/{fid}", headers=bob).status_code == 404 or fid == bobs["id"]
    assert client.get(f"/shared-with-me/{secret['id']}", headers=bob).status_code == 404
    assert client.get(f"/files/{secret['id']}", headers=bob).status_code == 404
    assert client.get("/shared-with-me", headers=carol).json["items"] == []
    assert [x["id"] for x in client.get("/shared-with-me", headers=bob).json["items"]] == [mine["id"]]
    # others cannot see, revoke or zip the owner's links and files
    assert client.get("/shares", headers=bob).json["items"] == []
    assert client.delete(f"/shares/{link['id']}", headers=bob).status_code == 404
    assert client.get(f"/files/{mine['id']}/recipients", headers=bob).status_code == 404
    assert client.delete(f"/files/{mine['id']}/recipients/bob", headers=carol).status_code == 404
    assert client.post("/files/zip", headers=carol, json={"file_ids": [mine["id"]]}).status_code == 404
    # the error for a missing file and a not-shared one is the same
    missing = client.get("/shared-with-me/" + "0" * 32, headers=carol).json
    assert client.get(f"/shared-with-me/{mine['id']}", headers=carol).json == missing
    assert files_keys(redis_client) == before  # and nothing changed


def test_the_shares_of_a_file_with_an_expiry_expire_with_it(api, client, alice, bob, redis_client):
    fid = api.chunk(alice, 0, 1, b"brief").json["file_id"]
    done = client.post("/upload_complete", headers=alice, json={"file_id": fid, "name": "b.txt", "total_size": 5, "expires_in": 3600})
    assert done.status_code == 201, done.json
    link = make_link(client, alice, fid)
    client.post(f"/files/{fid}/recipients", headers=alice, json={"username": "bob"})
    meta_exp = redis_client.expiretime(f"files:{{{fid}}}:meta")
    keys = [k for k in redis_client.keys("files:*") if (fid.encode() in k and b":share" in k) or b":recipients" in k]
    keys += redis_client.keys("files:{l:*}:link")
    assert len(keys) == 4 and {redis_client.expiretime(k) for k in keys} == {meta_exp}
    assert client.get(link_path(link)).data == b"brief"


def test_a_zip_streams_piece_by_piece_never_the_whole(app, api, alice):
    data = bytes(range(256)) * 40  # 10 KiB in 160 chunks of 64 bytes
    f = api.upload(alice, data, name="big.bin")
    client = app.test_client()
    resp = client.post("/files/zip", headers=alice, json={"file_ids": [f["id"]]}, buffered=False)
    pieces = list(resp.response)
    assert len(pieces) > 100 and max(len(p) for p in pieces) <= 1024  # no piece holds more than a chunk and a header
    z = zipfile.ZipFile(io.BytesIO(b"".join(pieces)))
    assert z.read("big.bin") == data and z.testzip() is None
