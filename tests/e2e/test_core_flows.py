"""The core user journeys, over HTTP through the gateway."""

from __future__ import annotations

import base64
import os

import blake3
import google_crc32c
import requests


def blake3_composite(data: bytes, chunk: int) -> str:
    """A file's composite, from the bytes uploaded: BLAKE3 over its chunks' BLAKE3 digests, ``-<chunks>``."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return blake3.blake3(b"".join(blake3.blake3(p).digest() for p in pieces)).hexdigest() + f"-{len(pieces)}"


def upload_chunks(api, data: bytes, chunk: int, order=None, resend=()):
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    total = len(pieces)
    order = list(order if order is not None else range(total))
    file_id = None
    for idx in order + list(resend):
        fields = {"chunk_index": str(idx), "total_chunks": str(total)}
        if file_id:
            fields["file_id"] = file_id
        resp = api.post("/upload_chunk", data=fields, files={"chunk_data": ("chunk", pieces[idx])})
        assert resp.status_code in (200, 201), resp.text
        file_id = resp.json()["file_id"]
    return file_id, total


def test_chunked_upload_out_of_order_with_a_resend_then_full_lifecycle(make_user):
    _, _, api = make_user()
    data = os.urandom(300_000)
    file_id, total = upload_chunks(api, data, 64 * 1024, order=[4, 0, 2, 1, 3], resend=[2])
    assert total == 5

    # not visible before completion
    assert api.get(f"/files/{file_id}/meta").status_code == 404

    resp = api.post(
        "/upload_complete", json={"file_id": file_id, "name": "notes.bin", "mime_type": "application/octet-stream", "total_size": len(data)}
    )
    assert resp.status_code == 201, resp.text
    meta = resp.json()
    # chunks out of order, one sent twice: the whole file's CRC32C and composite are those of the bytes in order
    assert meta["size"] == len(data) and meta["crc32c"] == f"{google_crc32c.value(data):08x}"
    assert meta["composite_blake3"] == blake3_composite(data, 64 * 1024) and meta["sha256"] is None

    listing = api.get("/files").json()
    assert [f["id"] for f in listing["items"]] == [file_id]

    got = api.get(f"/files/{file_id}")
    assert got.status_code == 200 and got.content == data
    assert got.headers["Content-Length"] == str(len(data)) and got.headers["ETag"] == f'"{meta["composite_blake3"]}"'
    assert "attachment" in got.headers["Content-Disposition"]

    renamed = api.post(f"/files/{file_id}/rename", json={"new_name": "renamed.bin"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "renamed.bin"

    assert api.delete(f"/files/{file_id}").status_code == 204
    assert api.get(f"/files/{file_id}").status_code == 404
    assert api.get("/files").json()["items"] == []


def test_a_resent_chunk_with_other_bytes_is_a_conflict(make_user):
    _, _, api = make_user()
    first = api.post("/upload_chunk", data={"chunk_index": "0", "total_chunks": "2"}, files={"chunk_data": ("c", b"a" * 10)})
    file_id = first.json()["file_id"]
    again = api.post(
        "/upload_chunk", data={"file_id": file_id, "chunk_index": "0", "total_chunks": "2"}, files={"chunk_data": ("c", b"b" * 10)}
    )
    assert again.status_code == 409 and again.json()["error"]["code"] == "chunk_conflict"


def test_missing_chunks_are_named_and_the_upload_can_still_finish(make_user):
    _, _, api = make_user()
    data = os.urandom(30_000)
    file_id, _ = upload_chunks(api, data, 10_000, order=[0, 2])
    resp = api.post("/upload_complete", json={"file_id": file_id, "name": "a.bin", "total_size": len(data)})
    assert resp.status_code == 409
    assert 1 in resp.json()["error"]["details"]["missing"]
    ok = api.post(
        "/upload_chunk",
        data={"file_id": file_id, "chunk_index": "1", "total_chunks": "3"},
        files={"chunk_data": ("c", data[10_000:20_000])},
    )
    assert ok.status_code == 200
    done = api.post("/upload_complete", json={"file_id": file_id, "name": "a.bin", "total_size": len(data)})
    assert done.status_code == 201
    assert api.get(f"/files/{file_id}").content == data


def test_base64_json_and_raw_chunks_and_texts(make_user):
    _, _, api = make_user()
    part = os.urandom(1000)
    r = api.post("/upload_chunk", json={"chunk_index": 0, "total_chunks": 2, "chunk_data": base64.b64encode(part).decode()})
    assert r.status_code == 201, r.text
    fid = r.json()["file_id"]
    r = api.post(
        f"/upload_chunk?file_id={fid}&chunk_index=1&total_chunks=2", data=part, headers={"Content-Type": "application/octet-stream"}
    )
    assert r.status_code == 200, r.text
    assert api.post("/upload_complete", json={"file_id": fid, "name": "x.bin", "total_size": 2000}).status_code == 201
    assert api.get(f"/files/{fid}").content == part + part

    t = api.post("/texts", json={"content": "hello, wörld", "name": "hello.txt"})
    assert t.status_code == 201, t.text
    assert api.get(f"/texts/{t.json()['id']}").json()["content"] == "hello, wörld"

    small = api.post("/files", files={"file": ("small.txt", b"tiny file")})
    assert small.status_code == 201, small.text
    assert api.get(f"/files/{small.json()['id']}").content == b"tiny file"


def test_users_cannot_see_or_touch_each_others_files(make_user):
    _, _, alice = make_user()
    _, _, bob = make_user()
    fid = alice.post("/files", files={"file": ("private.txt", b"alice only")}).json()["id"]
    assert bob.get(f"/files/{fid}").status_code == 404
    assert bob.get(f"/files/{fid}/meta").status_code == 404
    assert bob.post(f"/files/{fid}/rename", json={"new_name": "mine.txt"}).status_code == 404
    assert bob.delete(f"/files/{fid}").status_code == 404
    assert fid not in [f["id"] for f in bob.get("/files").json()["items"]]
    assert alice.get(f"/files/{fid}").content == b"alice only"


def test_admin_creates_a_user_who_works_then_disabling_stops_their_token_at_once(system, admin, unique, login_as):
    name, password = f"carol{unique}", "carol-password-1"
    assert admin.post("/admin/users", json={"username": name, "password": password}).status_code == 201
    carol = login_as(name, password)
    assert carol.get("/auth/me").json()["username"] == name
    fid = carol.post("/texts", json={"content": "draft"}).json()["id"]

    assert admin.patch(f"/admin/users/{name}", json={"active": False}).status_code == 200
    for path in ("/auth/me", "/files", f"/files/{fid}"):
        resp = carol.get(path)
        assert resp.status_code == 401, (path, resp.text)
    relogin = requests.post(f"{system.base}/auth/login", json={"username": name, "password": password}, timeout=30)
    assert relogin.status_code == 401


def test_role_change_and_deletion_take_effect_on_the_next_request(system, admin, make_user, login_as):
    name, password, user = make_user()
    assert user.get("/admin/users").status_code == 403
    assert admin.post("/admin/roles", json={"username": name, "role": "admin"}).status_code == 200
    assert user.get("/files").status_code == 401  # old token, old role: refused
    promoted = login_as(name, password)
    assert promoted.get("/admin/users").status_code == 200
    assert admin.delete(f"/admin/users/{name}").status_code == 204
    assert promoted.get("/auth/me").status_code == 401


def test_admin_sees_and_deletes_any_file(admin, make_user):
    name, _, user = make_user()
    fid = user.post("/texts", json={"content": "to be removed"}).json()["id"]
    listed = admin.get(f"/admin/files?owner={name}").json()["items"]
    assert [f["id"] for f in listed] == [fid]
    assert admin.delete(f"/admin/files/{fid}").status_code == 204
    assert user.get(f"/files/{fid}").status_code == 404


def test_each_service_publishes_its_openapi_document(system):
    for svc in ("auth", "files", "admin"):
        doc = requests.get(f"{system.base}/{svc}/openapi.json", timeout=10)
        assert doc.status_code == 200
        assert doc.json()["paths"], svc
