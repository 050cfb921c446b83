"""Abandoned uploads expire completely; the OpenAPI document lists every route."""

import time

import pytest

from redfile_dev.testing import auth_header, user_token
from redfile_files.storage import keys

from .conftest import chunk_at

TTL = 30


@pytest.fixture
def short(make_app, settings, redis_client):
    app = make_app(upload_ttl=TTL)
    return app.test_client(), auth_header(user_token(settings, redis_client, "alice"))


def upload_keys(r, fid):
    return [k for k in r.keys("*") if fid.encode() in k]


def start(client, headers, total=4, indices=(0, 2)):
    fid = None
    for i in indices:
        body = {"chunk_index": i, "total_chunks": total, "chunk_data": "eHl6"}
        resp = client.post("/upload_chunk", headers=headers, json={**body, **({"file_id": fid} if fid else {})})
        assert resp.status_code in (200, 201)
        fid = resp.json["file_id"]
    return fid


def test_every_key_of_an_abandoned_upload_expires_within_upload_ttl(short, redis_client):
    client, headers = short
    fid = start(client, headers)
    found = upload_keys(redis_client, fid)
    assert len(found) == 4  # upload, parts, two chunks
    for key in found:
        assert 0 < redis_client.ttl(key) <= TTL, key
    deadline = int(redis_client.hget(keys.upload(fid), "deadline"))
    assert {redis_client.expiretime(k) for k in (keys.upload(fid), keys.parts(fid))} == {deadline}
    # a chunk (in a slot of its own) lives UPLOAD_TTL from when it was written: never less than the deadline
    assert all(deadline <= redis_client.expiretime(chunk_at(redis_client, fid, i)) <= deadline + 2 for i in (0, 2))


def test_activity_moves_every_keys_deadline(short, redis_client):
    client, headers = short
    fid = start(client, headers)
    # pretend the upload went quiet 10 s ago: its shared deadline is 10 s closer
    earlier = int(time.time()) + TTL - 10
    redis_client.hset(keys.upload(fid), "deadline", earlier)
    for key in upload_keys(redis_client, fid):
        redis_client.expireat(key, earlier)
    start_resp = client.post(
        "/upload_chunk", headers=headers, json={"file_id": fid, "chunk_index": 1, "total_chunks": 4, "chunk_data": "eHl6"}
    )
    assert start_resp.status_code == 200
    found = upload_keys(redis_client, fid)
    assert len(found) == 5
    for key in found:
        assert TTL - 3 <= redis_client.ttl(key) <= TTL, key


def test_quiet_periods_shorter_than_a_tenth_share_the_old_deadline(short, redis_client):
    client, headers = short
    fid = start(client, headers, indices=(0,))
    deadline = int(redis_client.hget(keys.upload(fid), "deadline"))
    start_again = client.post(
        "/upload_chunk", headers=headers, json={"file_id": fid, "chunk_index": 3, "total_chunks": 4, "chunk_data": "eHl6"}
    )
    assert start_again.status_code == 200
    assert int(redis_client.hget(keys.upload(fid), "deadline")) == deadline
    assert redis_client.expiretime(keys.parts(fid)) == deadline <= redis_client.expiretime(chunk_at(redis_client, fid, 3))


def test_an_expired_upload_is_gone_for_good(short, redis_client):
    client, headers = short
    fid = start(client, headers)
    for key in upload_keys(redis_client, fid):
        redis_client.pexpire(key, 1)
    time.sleep(0.05)
    assert upload_keys(redis_client, fid) == []
    resp = client.post("/upload_chunk", headers=headers, json={"file_id": fid, "chunk_index": 1, "total_chunks": 4, "chunk_data": "eHl6"})
    assert resp.status_code == 404 and resp.json["error"]["code"] == "upload_not_found"
    assert client.post("/upload_complete", headers=headers, json={"file_id": fid, "name": "x", "total_size": 6}).status_code == 404
    assert upload_keys(redis_client, fid) == []


EXPECTED = {
    ("post", "/upload_chunk"): "BearerAuth",
    ("post", "/upload_complete"): "BearerAuth",
    ("get", "/files"): "BearerAuth",
    ("post", "/files"): "BearerAuth",
    ("get", "/files/{file_id}"): "BearerAuth",
    ("get", "/files/{file_id}/meta"): "BearerAuth",
    ("post", "/files/{file_id}/rename"): "BearerAuth",
    ("delete", "/files/{file_id}"): "BearerAuth",
    ("post", "/texts"): "BearerAuth",
    ("get", "/texts/{file_id}"): "BearerAuth",
    ("get", "/internal/files"): "ServiceToken",
    ("delete", "/internal/files/{file_id}"): "ServiceToken",
    ("delete", "/internal/owners/{username}/files"): "ServiceToken",
    ("get", "/internal/owners/{username}/quota"): "ServiceToken",
    ("put", "/internal/owners/{username}/quota"): "ServiceToken",
    ("post", "/uploads"): "BearerAuth",
    ("get", "/uploads/{upload_id}"): "BearerAuth",
    ("put", "/uploads/{upload_id}/chunks/{index}"): "BearerAuth",
    ("post", "/uploads/{upload_id}/complete"): "BearerAuth",
    ("delete", "/uploads/{upload_id}"): "BearerAuth",
    ("head", "/files/{file_id}"): "BearerAuth",
    ("get", "/quota"): "BearerAuth",
}


def test_the_openapi_document_lists_every_route(client):
    resp = client.get("/files/openapi.json")
    assert resp.status_code == 200
    spec = resp.json
    internal = client.get("/internal/openapi.json").json  # the /internal/ operations: a document of their own
    assert not [p for p in spec["paths"] if p.startswith("/internal/")]
    assert all(p.startswith("/internal/") for p in internal["paths"])
    paths = {**spec["paths"], **internal["paths"]}
    found = {(m, p) for p, ops in paths.items() for m in ops if m in ("get", "post", "put", "delete", "head")}
    assert set(EXPECTED) <= found
    for (method, path), scheme in EXPECTED.items():
        op = paths[path][method]
        assert op["security"] == [{scheme: []}], (method, path)
        assert op.get("summary"), (method, path)
    chunk_body = spec["paths"]["/upload_chunk"]["post"]["requestBody"]["content"]
    assert set(chunk_body) == {"multipart/form-data", "application/json", "application/octet-stream"}
    assert set(spec["paths"]["/files"]["post"]["requestBody"]["content"]) == {"multipart/form-data", "application/json"}
    assert "FileOut" in spec["components"]["schemas"]
    put = spec["paths"]["/uploads/{upload_id}/chunks/{index}"]["put"]
    assert set(put["requestBody"]["content"]) == {"application/octet-stream"}
    assert {"X-Checksum-SHA256", "X-Checksum-CRC32C"} <= {p["name"] for p in put["parameters"]}
    assert {"Range", "If-Range", "If-None-Match"} <= {p["name"] for p in spec["paths"]["/files/{file_id}"]["get"]["parameters"]}
    assert {"UploadIn", "UploadOut", "QuotaOut"} <= set(spec["components"]["schemas"])
    assert {"BearerAuth", "ServiceToken"} <= set(spec["components"]["securitySchemes"])
