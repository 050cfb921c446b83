"""Every bad input gets a 4xx JSON error, and nothing stored changes."""

from __future__ import annotations

import pytest
import requests


def assert_error(resp, status=None):
    assert 400 <= resp.status_code < 500, (resp.status_code, resp.text)
    if status:
        assert resp.status_code == status, resp.text
    body = resp.json()
    assert set(body) == {"error"} and body["error"]["code"] and body["error"]["message"]


@pytest.fixture
def owner_with_file(make_user):
    _, _, api = make_user()
    meta = api.post("/files", files={"file": ("keep.txt", b"keep me")}).json()
    return api, meta


def snapshot(api):
    return api.get("/files").json()


BAD_NAMES = ["../etc/passwd", "a/b", "a\\b", "nul\x00byte", "bell\x07", "..", ".", "x" * 300, " lead", ""]


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_on_rename(owner_with_file, name):
    api, meta = owner_with_file
    before = snapshot(api)
    assert_error(api.post(f"/files/{meta['id']}/rename", json={"new_name": name}))
    assert snapshot(api) == before


def test_unknown_ids(owner_with_file):
    api, _ = owner_with_file
    for path in ("/files/0123456789abcdef0123456789abcdef", "/files/not-an-id", "/files/..%2f..%2fetc"):
        assert_error(api.get(path), 404)
    assert_error(
        api.post("/upload_chunk", data={"file_id": "0" * 32, "chunk_index": "0", "total_chunks": "1"}, files={"chunk_data": ("c", b"x")}),
        404,
    )
    assert_error(api.post("/upload_complete", json={"file_id": "0" * 32, "name": "a", "total_size": 1}), 404)


@pytest.mark.parametrize(
    "fields",
    [
        {"chunk_index": "-1", "total_chunks": "2"},
        {"chunk_index": "2", "total_chunks": "2"},
        {"chunk_index": "99999999999999999999", "total_chunks": "2"},
        {"chunk_index": "x", "total_chunks": "2"},
        {"chunk_index": "0", "total_chunks": "0"},
        {"chunk_index": "0", "total_chunks": "-5"},
        {"chunk_index": "0"},
    ],
)
def test_bad_chunk_fields(owner_with_file, fields):
    api, _ = owner_with_file
    before = snapshot(api)
    assert_error(api.post("/upload_chunk", data=fields, files={"chunk_data": ("c", b"x")}))
    assert snapshot(api) == before


def test_invalid_base64_checksum_and_oversized_chunk(owner_with_file):
    api, _ = owner_with_file
    assert_error(api.post("/upload_chunk", json={"chunk_index": 0, "total_chunks": 1, "chunk_data": "!!!not base64!!!"}), 400)
    assert_error(
        api.post("/upload_chunk", data={"chunk_index": "0", "total_chunks": "1", "sha256": "0" * 64}, files={"chunk_data": ("c", b"abc")}),
        400,
    )
    huge = b"x" * (8 * 1024 * 1024 + 1)
    assert_error(
        api.post("/upload_chunk?chunk_index=0&total_chunks=1", data=huge, headers={"Content-Type": "application/octet-stream"}), 413
    )


def test_malformed_bodies(system, owner_with_file):
    api, meta = owner_with_file
    assert_error(api.post(f"/files/{meta['id']}/rename", data="{not json", headers={"Content-Type": "application/json"}))
    assert_error(api.post(f"/files/{meta['id']}/rename", json={"new_name": 12}))
    assert_error(api.post("/upload_complete", json={"file_id": meta["id"]}))
    assert_error(requests.post(f"{system.base}/auth/login", data="garbage", headers={"Content-Type": "application/json"}, timeout=10))
    assert_error(requests.post(f"{system.base}/auth/login", json={"username": ["x"], "password": None}, timeout=10))


def test_bad_mime_type_and_size_mismatch(owner_with_file):
    api, _ = owner_with_file
    r = api.post("/upload_chunk", data={"chunk_index": "0", "total_chunks": "1"}, files={"chunk_data": ("c", b"12345")})
    fid = r.json()["file_id"]
    assert_error(api.post("/upload_complete", json={"file_id": fid, "name": "a.txt", "mime_type": "not a mime", "total_size": 5}), 400)
    assert_error(api.post("/upload_complete", json={"file_id": fid, "name": "a.txt", "total_size": 6}), 422)
    assert api.post("/upload_complete", json={"file_id": fid, "name": "a.txt", "total_size": 5}).status_code == 201


def test_missing_or_bad_tokens(system):
    for path in ("/files", "/auth/me", "/admin/users"):
        assert_error(requests.get(system.base + path, timeout=10), 401)
        assert_error(requests.get(system.base + path, headers={"Authorization": "Bearer nonsense"}, timeout=10), 401)
