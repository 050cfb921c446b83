"""One-request uploads (POST /files) and text snippets (POST /texts)."""

import base64
import hashlib
import io
import re

from redfile_files.storage import keys


def test_multipart_one_request_upload(client, alice, redis_client):
    data = bytes(range(256))[:200]
    resp = client.post("/files", headers=alice, data={"file": (io.BytesIO(data), "photo.png", "image/png")})
    assert resp.status_code == 201
    meta = resp.json
    assert (meta["name"], meta["mime_type"], meta["size"], meta["kind"]) == ("photo.png", "image/png", 200, "file")
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    # stored through the chunk path, in max_chunk_bytes (64) pieces, with no TTL left
    assert int(redis_client.hget(keys.meta(meta["id"]), "total_chunks")) == 4
    assert not redis_client.keys("files:upload:*")
    assert client.get(f"/files/{meta['id']}", headers=alice).data == data


def test_multipart_name_and_type_fields_override_the_part(client, alice):
    form = {"file": (io.BytesIO(b"x"), "a.png", "image/png"), "name": "b.gif", "mime_type": "image/gif"}
    meta = client.post("/files", headers=alice, data=form).json
    assert (meta["name"], meta["mime_type"]) == ("b.gif", "image/gif")


def test_json_one_request_upload(client, alice):
    body = {"name": "data.bin", "data": base64.b64encode(b"\x00\x01\x02").decode()}
    meta = client.post("/files", headers=alice, json=body).json
    assert meta["mime_type"] == "application/octet-stream" and meta["size"] == 3
    assert client.get(f"/files/{meta['id']}", headers=alice).data == b"\x00\x01\x02"


def test_one_request_upload_limits(client, alice, unchanged):
    with unchanged():
        too_big = client.post("/files", headers=alice, json={"name": "x", "data": base64.b64encode(b"x" * 257).decode()})
        assert too_big.status_code == 413 and too_big.json["error"]["code"] == "payload_too_large"
        part = client.post("/files", headers=alice, data={"file": (io.BytesIO(b"x" * 257), "x")})
        assert part.status_code == 413
        for body, code in (
            ({"name": "x", "data": "not base64!"}, "invalid_base64"),
            ({"name": "../x", "data": "eA=="}, "invalid_name"),
            ({"name": "x", "data": "eA==", "mime_type": "text"}, "invalid_mime_type"),
            ({"data": "eA=="}, "validation_error"),
        ):
            assert client.post("/files", headers=alice, json=body).json["error"]["code"] == code
        assert (
            client.post("/files", headers=alice, data={"file": (io.BytesIO(b"x"), "x"), "mime_type": "bad"}).json["error"]["code"]
            == "invalid_mime_type"
        )
        assert client.post("/files", headers=alice, data=b"raw", content_type="application/octet-stream").status_code == 415


def test_text_snippets(client, alice):
    resp = client.post("/texts", headers=alice, json={"content": "héllo\nwörld ✓"})
    assert resp.status_code == 201
    meta = resp.json
    assert meta["kind"] == "text" and meta["mime_type"] == "text/plain; charset=utf-8"
    assert re.fullmatch(r"snippet-\d{8}-\d{6}\.txt", meta["name"])
    assert meta["size"] == len("héllo\nwörld ✓".encode())

    text = client.get(f"/texts/{meta['id']}", headers=alice)
    assert text.status_code == 200 and text.json == {**meta, "content": "héllo\nwörld ✓"}

    # texts are files: listed, downloaded, renamed and deleted as such
    assert meta["id"] in [f["id"] for f in client.get("/files", headers=alice).json["items"]]
    download = client.get(f"/files/{meta['id']}", headers=alice)
    assert download.data.decode() == "héllo\nwörld ✓" and download.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert client.post(f"/files/{meta['id']}/rename", headers=alice, json={"new_name": "greeting.txt"}).json["kind"] == "text"
    assert client.get(f"/texts/{meta['id']}", headers=alice).json["name"] == "greeting.txt"
    assert client.delete(f"/files/{meta['id']}", headers=alice).status_code == 204
    assert client.get(f"/texts/{meta['id']}", headers=alice).status_code == 404


def test_text_with_a_name_and_a_long_text(client, alice):
    content = "line\n" * 100  # 500 bytes: over max_single_upload_bytes (256)
    assert client.post("/texts", headers=alice, json={"content": content, "name": "n.txt"}).status_code == 413
    content = "ab" * 100  # 200 bytes, 4 chunks
    meta = client.post("/texts", headers=alice, json={"content": content, "name": "n.txt"}).json
    assert meta["name"] == "n.txt" and client.get(f"/texts/{meta['id']}", headers=alice).json["content"] == content


def test_a_file_is_not_a_text(api, client, alice, unchanged):
    meta = api.upload(alice, b"plain file")
    with unchanged():
        resp = client.get(f"/texts/{meta['id']}", headers=alice)
    assert resp.status_code == 404 and resp.json["error"]["code"] == "file_not_found"


def test_bad_texts(client, alice, unchanged):
    with unchanged():
        for body, status in (({}, 422), ({"content": 5}, 422), ({"content": "x", "name": "a/b"}, 400), ({"content": "x", "name": ""}, 400)):
            assert client.post("/texts", headers=alice, json=body).status_code == status
