"""Upload sessions: create, chunks in any order with checksums, status, complete, abort; quotas; expiry."""

import base64
import hashlib
import os
import time

import google_crc32c
import pytest

from redfile_common.errors import ApiError
from redfile_files import ledger, storage

from .conftest import expire_now


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def crc(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def file_keys(r, fid):
    return sorted(k for k in r.keys("*") if fid.encode() in k)


def user_state(r, user):
    return {k: r.type(k) for k in r.keys(f"files:{{u:{user}}}:*")}


def test_a_session_from_create_to_download(client, api, alice, redis_client, unchanged):
    data = os.urandom(64 * 4 + 17)
    pieces = [data[i : i + 64] for i in range(0, len(data), 64)]
    created = api.create(alice, len(data), name="big.bin", mime_type="application/x-thing", chunk_size=64, sha256=sha(data))
    assert created.status_code == 201
    up = created.json
    assert (up["total_size"], up["chunk_size"], up["total_chunks"], up["received_chunks"]) == (len(data), 64, 5, 0)
    assert up["missing"] == [0, 1, 2, 3, 4] and up["missing_count"] == 5 and up["sha256"] == sha(data)
    assert up["expires_at"].endswith("Z") and up["file_expires_at"] is None and up["encrypted"] is False
    fid = up["id"]
    # the whole declared size is reserved now
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == len(data)

    # out of order, with checksums in hex and in base64 (as S3 sends them)
    first = api.put(alice, fid, 4, pieces[4], **{"X-Checksum-SHA256": sha(pieces[4])})
    assert first.status_code == 201
    assert first.json == {
        "upload_id": fid, "chunk_index": 4, "size": 17, "sha256": sha(pieces[4]), "crc32c": crc(pieces[4]),
        "stored": True, "received_chunks": 1, "received_bytes": 17,
    }  # fmt: skip
    b64_crc = base64.b64encode(bytes.fromhex(crc(pieces[1]))).decode()
    assert api.put(alice, fid, 1, pieces[1], **{"X-Checksum-CRC32C": b64_crc}).status_code == 201
    b64_sha = base64.b64encode(hashlib.sha256(pieces[0]).digest()).decode()
    assert api.put(alice, fid, 0, pieces[0], **{"X-Checksum-SHA256": b64_sha}).status_code == 201

    # a repeat is a no-op; other bytes are a conflict; a bad checksum or size stores nothing
    again = api.put(alice, fid, 1, pieces[1])
    assert again.status_code == 200 and again.json["stored"] is False and again.json["received_chunks"] == 3
    with unchanged():
        assert api.put(alice, fid, 1, b"x" * 64).json["error"]["code"] == "chunk_conflict"
        bad = api.put(alice, fid, 2, pieces[2], **{"X-Checksum-SHA256": sha(b"other")})
        assert bad.status_code == 400 and bad.json["error"]["code"] == "checksum_mismatch"
        assert bad.json["error"]["details"] == {"chunk_index": 2, "checksums": ["sha256"]}
        assert api.put(alice, fid, 2, pieces[2], **{"X-Checksum-CRC32C": "00000000"}).status_code == 400
        short = api.put(alice, fid, 2, pieces[2][:10])
        assert short.status_code == 400 and short.json["error"]["details"]["expected_size"] == 64
        assert api.put(alice, fid, 5, b"x").status_code == 400
        assert api.put(alice, fid, -1, b"x").status_code == 400
        assert api.put(alice, fid, 2, b"x" * 65).status_code == 413
        assert api.put(alice, fid, 2, pieces[2], **{"X-Checksum-SHA256": "zz"}).status_code == 422
        incomplete = client.post(f"/uploads/{fid}/complete", headers=alice)
        assert incomplete.status_code == 409 and incomplete.json["error"]["details"] == {"missing": [2, 3], "missing_count": 2}

    status = client.get(f"/uploads/{fid}", headers=alice).json
    assert status["received_chunks"] == 3 and status["received_bytes"] == 64 * 2 + 17 and status["missing"] == [2, 3]
    api.put(alice, fid, 3, pieces[3])
    api.put(alice, fid, 2, pieces[2])
    done = client.post(f"/uploads/{fid}/complete", headers=alice)
    assert done.status_code == 201
    meta = done.json
    digests = b"".join(hashlib.sha256(p).digest() for p in pieces)
    assert meta["sha256"] == sha(data) and meta["crc32c"] == crc(data)
    assert meta["composite_sha256"] == f"{hashlib.sha256(digests).hexdigest()}-5"
    assert (meta["name"], meta["mime_type"], meta["size"], meta["chunk_size"], meta["total_chunks"]) == ("big.bin", "application/x-thing", len(data), 64, 5)

    quota = client.get("/quota", headers=alice).json
    assert quota["used_bytes"] == len(data) and quota["reserved_bytes"] == 0
    got = client.get(f"/files/{fid}", headers=alice)
    assert got.data == data and got.headers["X-Checksum-Composite"] == meta["composite_sha256"]
    assert got.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    assert client.get(f"/uploads/{fid}", headers=alice).status_code == 404
    assert client.post(f"/uploads/{fid}/complete", headers=alice).status_code == 404

    assert client.delete(f"/files/{fid}", headers=alice).status_code == 204
    assert file_keys(redis_client, fid) == []
    assert user_state(redis_client, "alice") == {}  # nothing left of alice in Redis at all
    assert client.get("/quota", headers=alice).json["used_bytes"] == 0


def test_the_declared_sha256_is_checked_at_completion(api, client, alice):
    up = api.create(alice, 5, chunk_size=64, sha256=sha(b"other")).json
    api.put(alice, up["id"], 0, b"hello")
    resp = client.post(f"/uploads/{up['id']}/complete", headers=alice)
    assert resp.status_code == 400 and resp.json["error"]["code"] == "checksum_mismatch"
    assert resp.json["error"]["details"]["computed"] == sha(b"hello")
    assert client.get(f"/uploads/{up['id']}", headers=alice).status_code == 200  # still there, to abort


def test_abort_removes_everything_and_returns_the_reservation(api, client, alice, redis_client):
    up = api.create(alice, 200, chunk_size=64).json
    api.put(alice, up["id"], 0, b"a" * 64)
    api.put(alice, up["id"], 3, b"d" * 8)
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 200
    assert client.delete(f"/uploads/{up['id']}", headers=alice).status_code == 204
    assert file_keys(redis_client, up["id"]) == [] and user_state(redis_client, "alice") == {}
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 0
    assert client.delete(f"/uploads/{up['id']}", headers=alice).status_code == 404


def test_an_empty_file_needs_no_chunk(api, client, alice):
    up = api.create(alice, 0).json
    assert up["total_chunks"] == 0 and up["missing"] == []
    meta = client.post(f"/uploads/{up['id']}/complete", headers=alice).json
    assert meta["size"] == 0 and meta["sha256"] == sha(b"") and meta["composite_sha256"].endswith("-0")
    assert client.get(f"/files/{meta['id']}", headers=alice).data == b""


def test_the_default_chunk_size_and_the_limits(make_app, settings, redis_client, unchanged):
    from redfile_common.testing import auth_header, user_token

    client = make_app(max_chunk_bytes=1024, default_chunk_bytes=100, max_chunks=10, max_file_bytes=5000).test_client()
    alice = auth_header(user_token(settings, redis_client, "alice"))
    assert client.post("/uploads", headers=alice, json={"name": "a", "total_size": 1000}).json["chunk_size"] == 100
    with unchanged():
        too_many = client.post("/uploads", headers=alice, json={"name": "a", "total_size": 1001})
        assert too_many.status_code == 422 and "chunk_size" in too_many.json["error"]["details"]["json"]
        assert client.post("/uploads", headers=alice, json={"name": "a", "total_size": 5001, "chunk_size": 1024}).status_code == 413
        assert client.post("/uploads", headers=alice, json={"name": "a", "total_size": 10, "chunk_size": 1025}).status_code == 422


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"total_size": 5}, 422, "validation_error"),
        ({"name": "a"}, 422, "validation_error"),
        ({"name": "a", "total_size": -1}, 422, "validation_error"),
        ({"name": "a", "total_size": "5"}, 422, "validation_error"),
        ({"name": "a/b", "total_size": 5}, 400, "invalid_name"),
        ({"name": "a", "total_size": 5, "mime_type": "nope"}, 400, "invalid_mime_type"),
        ({"name": "a", "total_size": 5, "sha256": "xyz"}, 422, "validation_error"),
        ({"name": "a", "total_size": 5, "chunk_size": 0}, 422, "validation_error"),
        ({"name": "a", "total_size": 5, "expires_in": 0}, 422, "validation_error"),
        ({"name": "a", "total_size": 5, "expires_at": "yesterday"}, 422, "validation_error"),
        ({"name": "a", "total_size": 5, "expires_at": "2001-01-01T00:00:00Z"}, 422, "validation_error"),
        ({"name": "a", "total_size": 5, "expires_in": 5, "expires_at": "2099-01-01T00:00:00Z"}, 422, "validation_error"),
    ],
)
def test_bad_sessions_are_refused_and_store_nothing(client, alice, unchanged, body, status, code):
    with unchanged():
        resp = client.post("/uploads", headers=alice, json=body)
    assert resp.status_code == status and resp.json["error"]["code"] == code, resp.json


def test_other_users_and_unknown_ids(api, client, alice, bob, unchanged):
    up = api.create(alice, 10).json
    with unchanged():
        for who, fid in ((bob, up["id"]), (alice, "0" * 32), (alice, "nope")):
            assert client.get(f"/uploads/{fid}", headers=who).status_code == 404
            assert api.put(who, fid, 0, b"x" * 10).json["error"]["code"] == "upload_not_found"
            assert client.post(f"/uploads/{fid}/complete", headers=who).status_code == 404
            assert client.delete(f"/uploads/{fid}", headers=who).status_code == 404
        for method in ("get", "delete"):
            assert getattr(client, method)(f"/uploads/{up['id']}").status_code == 401


def test_the_seed_api_and_sessions_share_one_engine(api, client, alice):
    up = api.create(alice, 6, chunk_size=3, name="s.txt", mime_type="text/plain").json
    api.put(alice, up["id"], 0, b"abc")
    api.put(alice, up["id"], 1, b"def")
    # a session finished by the seed's /upload_complete: the declared size must match
    assert api.complete(alice, up["id"], 7).status_code == 422
    assert api.complete(alice, up["id"], 6, name="renamed.txt").json["name"] == "renamed.txt"
    # a seed upload seen and finished through /uploads
    fid = api.chunk(alice, 0, 2, b"xy").json["file_id"]
    api.chunk(alice, 1, 2, b"z", fid)
    status = client.get(f"/uploads/{fid}", headers=alice).json
    assert status["total_size"] is None and status["received_bytes"] == 3 and status["missing"] == []
    resp = client.post(f"/uploads/{fid}/complete", headers=alice)
    assert resp.status_code == 422 and "name" in resp.json["error"]["details"]["json"]
    assert api.complete(alice, fid, 3, name="seed.bin").status_code == 201


def test_quota_is_enforced_for_sessions_seed_uploads_and_small_files(make_app, settings, redis_client, unchanged):
    from redfile_common.testing import auth_header, user_token

    client = make_app(default_quota_bytes=300).test_client()
    alice = auth_header(user_token(settings, redis_client, "alice"))
    assert client.post("/uploads", headers=alice, json={"name": "a", "total_size": 200}).status_code == 201
    with unchanged():
        over = client.post("/uploads", headers=alice, json={"name": "b", "total_size": 101})
        assert over.status_code == 413 and over.json["error"]["code"] == "quota_exceeded"
        assert over.json["error"]["details"] == {"quota_bytes": 300, "used_bytes": 0, "reserved_bytes": 200, "requested_bytes": 101}
        assert client.post("/files", headers=alice, json={"name": "x", "data": base64.b64encode(b"x" * 101).decode()}).status_code == 413
        assert client.post("/texts", headers=alice, json={"content": "y" * 101}).json["error"]["code"] == "quota_exceeded"
    # a seed upload grows chunk by chunk, each checked
    first = client.post("/upload_chunk", headers=alice, json={"chunk_index": 0, "total_chunks": 3, "chunk_data": base64.b64encode(b"s" * 60).decode()})
    fid = first.json["file_id"]
    body = {"file_id": fid, "chunk_index": 1, "total_chunks": 3, "chunk_data": base64.b64encode(b"t" * 41).decode()}
    with unchanged():
        resp = client.post("/upload_chunk", headers=alice, json=body)
        assert resp.status_code == 413 and resp.json["error"]["code"] == "quota_exceeded"
    body["chunk_data"] = base64.b64encode(b"t" * 40).decode()
    assert client.post("/upload_chunk", headers=alice, json=body).status_code == 200
    assert client.post("/upload_chunk", headers=alice, json=body).status_code == 200  # a repeat at the limit is fine
    quota = client.get("/quota", headers=alice).json
    assert quota["reserved_bytes"] == 300 and quota["available_bytes"] == 0


def test_an_expiring_file_disappears_everywhere_at_once(api, client, alice, service, redis_client):
    meta = api.session(alice, b"short-lived", expires_in=1)
    assert meta["expires_at"] is not None
    fid = meta["id"]
    assert client.get(f"/files/{fid}", headers=alice).headers["X-Expires-At"] == meta["expires_at"]
    assert client.get("/quota", headers=alice).json["used_bytes"] == 11
    deadline = time.time() + 5
    while time.time() < deadline and client.get(f"/files/{fid}/meta", headers=alice).status_code != 404:
        time.sleep(0.2)
    # the chunks and meta went by their TTL; the user's next request sweeps the rest
    assert file_keys(redis_client, fid) == []
    assert client.get("/files", headers=alice).json["items"] == []
    assert client.get("/quota", headers=alice).json["used_bytes"] == 0
    assert redis_client.zscore(ledger.ALL_INDEX, fid) is None and user_state(redis_client, "alice") == {}


def test_an_abandoned_upload_is_swept_without_any_request(api, client, alice, service, redis_client):
    from redfile_files.reconcile import Sweeper

    up = api.create(alice, 100).json
    api.put(alice, up["id"], 0, b"x" * 64)
    # time passes: the keys reach their deadline and the due entry comes up
    for key in file_keys(redis_client, up["id"]):
        redis_client.pexpire(key, 1)
    expire_now(redis_client, service, "alice", up["id"])
    time.sleep(0.01)
    assert Sweeper(service.reconciler, interval=60).run_once() == 1
    assert file_keys(redis_client, up["id"]) == [] and user_state(redis_client, "alice") == {}
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 0


def test_activity_keeps_an_upload_and_the_sweep_reschedules_it(api, alice, service, redis_client):
    up = api.create(alice, 100).json
    expire_now(redis_client, service, "alice", up["id"])  # due, but the upload is alive
    assert service.reconciler.sweep_user("alice") == 1
    deadline = int(redis_client.hget(storage.upload_key(up["id"]), "deadline"))
    assert redis_client.zscore(ledger.due_key("alice"), up["id"]) == deadline * 1_000_000
    assert ledger.Holding("r", 100) == service.ledger.holding("alice", up["id"])


def test_an_abort_that_loses_a_race_to_another_abort_leaves_no_reservation_behind(api, client, alice, service, monkeypatch):
    """Abort A removes the upload; abort B (its ownership check passed before that) takes a newer lease,
    so A's last step yields to B: B, finding the upload gone, must settle the id itself (not 120 s later)."""
    upload_id = api.create(alice, 1000).json["id"]
    first = service.ledger.lease("alice", upload_id)
    service.store.abort(upload_id, owner="alice", not_after_us=first.fence)  # abort A, up to its last step
    real_check = service.uploads._upload
    monkeypatch.setattr(service.uploads, "_upload", lambda owner, uid: None)  # B checked before A removed it
    with pytest.raises(ApiError) as err:
        service.uploads.abort("alice", upload_id)  # abort B
    assert err.value.code == "upload_not_found"
    monkeypatch.setattr(service.uploads, "_upload", real_check)
    service.ledger.apply("alice", upload_id, expected=first.score, held=None, index_ms=None, due_us=None)  # A's last step: stale
    quota = client.get("/quota", headers=alice).json
    assert quota["reserved_bytes"] == 0 and quota["used_bytes"] == 0, quota
