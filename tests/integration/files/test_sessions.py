"""Upload sessions: create, chunks in any order with checksums, status, complete, abort; quotas; expiry."""

import base64
import hashlib
import os
import time

import blake3
import google_crc32c
import pytest

from redfile_common.errors import ApiError
from redfile_files.storage import keys
from redfile_files.storage.records import Reserved

from .conftest import chunk_at, expire_now


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def crc(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def composite(pieces: list[bytes]) -> str:
    """BLAKE3 over the chunks' concatenated BLAKE3 digests, then -<number of chunks>."""
    return f"{blake3.blake3(b''.join(blake3.blake3(p).digest() for p in pieces)).hexdigest()}-{len(pieces)}"


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
    assert up["checksum_algorithm"] == "sha256"  # implied by the declared sha256
    assert up["expires_at"].endswith("Z") and up["file_expires_at"] is None and up["encrypted"] is False
    fid = up["id"]
    # the whole declared size is reserved now
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == len(data)

    # out of order, with checksums in hex and in base64 (as S3 sends them)
    first = api.put(alice, fid, 4, pieces[4], **{"X-Checksum-SHA256": sha(pieces[4])})
    assert first.status_code == 201
    assert first.json == {
        "upload_id": fid,
        "chunk_index": 4,
        "size": 17,
        "sha256": sha(pieces[4]),
        "crc32c": crc(pieces[4]),
        "blake3": b3(pieces[4]),
        "stored": True,
        "received_chunks": 1,
        "received_bytes": 17,
    }
    b64_crc = base64.b64encode(bytes.fromhex(crc(pieces[1]))).decode()
    assert api.put(alice, fid, 1, pieces[1], **{"X-Checksum-CRC32C": b64_crc}).status_code == 201
    b64_sha = base64.b64encode(hashlib.sha256(pieces[0]).digest()).decode()
    assert api.put(alice, fid, 0, pieces[0], **{"X-Checksum-SHA256": b64_sha}).status_code == 201

    # a repeat is a no-op; other bytes are a conflict; a bad checksum or size stores nothing
    again = api.put(alice, fid, 1, pieces[1])
    assert again.status_code == 200 and again.json["stored"] is False and again.json["received_chunks"] == 3
    assert again.json["sha256"] is None and again.json["crc32c"] == crc(pieces[1]) and again.json["blake3"] == b3(pieces[1])
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
    # declared: the file's SHA-256 was computed (and checked); the CRC32C and composite as for every file
    assert meta["sha256"] == sha(data) and meta["crc32c"] == crc(data)
    assert meta["composite_blake3"] == composite(pieces)
    assert (meta["name"], meta["mime_type"], meta["size"], meta["chunk_size"], meta["total_chunks"]) == (
        "big.bin",
        "application/x-thing",
        len(data),
        64,
        5,
    )

    quota = client.get("/quota", headers=alice).json
    assert quota["used_bytes"] == len(data) and quota["reserved_bytes"] == 0
    got = client.get(f"/files/{fid}", headers=alice)
    assert got.data == data and got.headers["X-Checksum-Composite"] == composite(pieces)
    assert got.headers["Repr-Digest"] == f"sha-256=:{base64.b64encode(hashlib.sha256(data).digest()).decode()}:"
    assert got.headers["X-Checksum-SHA256"] == sha(data) and got.headers["ETag"] == f'"{sha(data)}"'
    assert got.headers["X-Checksum-CRC32C"] == crc(data)
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


@pytest.mark.parametrize(
    "size, chunk, extra",
    [(0, None, {}), (200, 64, {"sha256": "ab" * 32}), (64 * 150, 64, {"checksum_algorithm": "sha256"}), (10, 64, {"expires_in": 3600})],
)
def test_the_created_upload_is_what_its_status_then_says(api, client, alice, size, chunk, extra):
    """POST /uploads answers without reading the upload back: its answer must be the status read from Redis."""
    created = api.create(alice, size, chunk_size=chunk, **extra).json
    assert created == client.get(f"/uploads/{created['id']}", headers=alice).json


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
    assert meta["size"] == 0 and meta["sha256"] is None and meta["crc32c"] == crc(b"") == "00000000"
    assert meta["composite_blake3"] == composite([]) and meta["composite_blake3"].endswith("-0")
    got = client.get(f"/files/{meta['id']}", headers=alice)
    assert got.data == b"" and got.headers["ETag"] == f'"{composite([])}"'
    # asked for, the empty file's SHA-256 is the SHA-256 of nothing
    asked = api.create(alice, 0, checksum_algorithm="sha256").json
    meta = client.post(f"/uploads/{asked['id']}/complete", headers=alice).json
    assert meta["sha256"] == sha(b"") and meta["composite_blake3"] == composite([])
    assert client.get(f"/files/{meta['id']}", headers=alice).headers["ETag"] == f'"{sha(b"")}"'


def test_checksum_algorithm_sha256_computes_the_files_sha256_without_declaring_it(api, client, alice, unchanged):
    data = os.urandom(64 * 5 + 9)
    pieces = [data[i : i + 64] for i in range(0, len(data), 64)]
    created = api.create(alice, len(data), chunk_size=64, checksum_algorithm="sha256")
    assert created.status_code == 201, created.json
    up = created.json
    assert up["checksum_algorithm"] == "sha256" and up["sha256"] is None  # asked for, not declared
    assert client.get(f"/uploads/{up['id']}", headers=alice).json["checksum_algorithm"] == "sha256"
    for index in (3, 5, 0, 2, 4, 1):  # out of order: completion reads back what the running digest does not cover
        resp = api.put(alice, up["id"], index, pieces[index])
        assert resp.status_code == 201 and resp.json["sha256"] is None, resp.json  # no chunk SHA-256 unless sent
    meta = client.post(f"/uploads/{up['id']}/complete", headers=alice).json
    assert meta["sha256"] == hashlib.sha256(data).hexdigest()
    assert meta["crc32c"] == crc(data) and meta["composite_blake3"] == composite(pieces)
    got = client.get(f"/files/{meta['id']}", headers=alice)
    assert got.data == data and got.headers["ETag"] == f'"{sha(data)}"' and got.headers["X-Checksum-SHA256"] == sha(data)
    assert got.headers["X-Checksum-Composite"] == composite(pieces)

    # without it: no SHA-256 at all, the CRC32C and the composite still right
    plain = api.create(alice, len(data), chunk_size=64).json
    assert plain["checksum_algorithm"] is None and plain["sha256"] is None
    assert client.get(f"/uploads/{plain['id']}", headers=alice).json["checksum_algorithm"] is None
    for index in (5, 1, 0, 4, 2, 3):
        assert api.put(alice, plain["id"], index, pieces[index]).status_code == 201
    meta = client.post(f"/uploads/{plain['id']}/complete", headers=alice).json
    assert meta["sha256"] is None and meta["crc32c"] == crc(data) and meta["composite_blake3"] == composite(pieces)
    assert client.get(f"/files/{meta['id']}/meta", headers=alice).json["sha256"] is None
    got = client.get(f"/files/{meta['id']}", headers=alice)
    assert got.data == data and got.headers["ETag"] == f'"{composite(pieces)}"' and got.headers["X-Checksum-CRC32C"] == crc(data)
    assert "X-Checksum-SHA256" not in got.headers and "Repr-Digest" not in got.headers

    # an explicit null is the default; another algorithm is refused and creates nothing
    assert api.create(alice, 5, checksum_algorithm=None).json["checksum_algorithm"] is None
    with unchanged():
        for bad in ("md5", "SHA256", "", 256):
            resp = api.create(alice, 5, checksum_algorithm=bad)
            assert resp.status_code == 422 and resp.json["error"]["code"] == "validation_error", (bad, resp.json)
            assert "checksum_algorithm" in resp.json["error"]["details"]["json"]


def test_a_chunks_sha256_is_computed_only_when_sent_and_then_verified(api, client, alice, redis_client, unchanged):
    pieces = [os.urandom(64), os.urandom(64), os.urandom(20)]
    up = api.create(alice, 64 * 2 + 20, chunk_size=64).json
    sent = api.put(alice, up["id"], 0, pieces[0], **{"X-Checksum-SHA256": sha(pieces[0])})
    assert sent.status_code == 201 and sent.json["sha256"] == sha(pieces[0])
    assert sent.json["crc32c"] == crc(pieces[0]) and sent.json["blake3"] == b3(pieces[0])
    not_sent = api.put(alice, up["id"], 1, pieces[1])
    assert not_sent.status_code == 201 and not_sent.json["sha256"] is None
    assert not_sent.json["crc32c"] == crc(pieces[1]) and not_sent.json["blake3"] == b3(pieces[1])
    # a repeat with the checksum: verified and echoed, still a no-op
    repeat = api.put(alice, up["id"], 1, pieces[1], **{"X-Checksum-SHA256": sha(pieces[1])})
    assert repeat.status_code == 200 and repeat.json["stored"] is False and repeat.json["sha256"] == sha(pieces[1])
    with unchanged():
        wrong = api.put(alice, up["id"], 2, pieces[2], **{"X-Checksum-SHA256": sha(b"not these bytes")})
        assert wrong.status_code == 400 and wrong.json["error"]["code"] == "checksum_mismatch"
        assert wrong.json["error"]["details"] == {"chunk_index": 2, "checksums": ["sha256"]}
        # a wrong one against a stored chunk's own bytes is refused too
        assert api.put(alice, up["id"], 1, pieces[1], **{"X-Checksum-SHA256": sha(pieces[0])}).status_code == 400
    assert redis_client.exists(chunk_at(redis_client, up["id"], 2)) == 0
    assert client.get(f"/uploads/{up['id']}", headers=alice).json["missing"] == [2]
    # and the record of a chunk sent with its SHA-256 is the same as without: no SHA-256 in it
    assert redis_client.hget(keys.parts(up["id"]), 0).decode() == f"64:{crc(pieces[0])}:{b3(pieces[0])}"
    assert redis_client.hget(keys.parts(up["id"]), 1).decode() == f"64:{crc(pieces[1])}:{b3(pieces[1])}"
    assert api.put(alice, up["id"], 2, pieces[2], **{"X-Checksum-SHA256": sha(pieces[2])}).json["sha256"] == sha(pieces[2])
    meta = client.post(f"/uploads/{up['id']}/complete", headers=alice).json
    assert meta["sha256"] is None and meta["composite_blake3"] == composite(pieces)  # chunks' SHA-256s make no file SHA-256


def test_the_default_chunk_size_and_the_limits(make_app, settings, redis_client, unchanged):
    from redfile_dev.testing import auth_header, user_token

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
    from redfile_dev.testing import auth_header, user_token

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
    first = client.post(
        "/upload_chunk", headers=alice, json={"chunk_index": 0, "total_chunks": 3, "chunk_data": base64.b64encode(b"s" * 60).decode()}
    )
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


def test_an_expiring_file_disappears_everywhere_at_once(api, client, alice, redis_client):
    meta = api.session(alice, b"short-lived", expires_in=2)  # lives 2-3 s: the deadline is a whole second, rounded up
    assert meta["expires_at"] is not None
    fid = meta["id"]
    assert client.get(f"/files/{fid}", headers=alice).headers["X-Expires-At"] == meta["expires_at"]
    assert client.get("/quota", headers=alice).json["used_bytes"] == 11
    deadline = time.time() + 8
    while time.time() < deadline and client.get(f"/files/{fid}/meta", headers=alice).status_code != 404:
        time.sleep(0.2)
    # the chunks and meta went by their TTL; the user's next request sweeps the rest
    assert file_keys(redis_client, fid) == []
    assert client.get("/files", headers=alice).json["items"] == []
    assert client.get("/quota", headers=alice).json["used_bytes"] == 0
    assert redis_client.zscore(keys.ALL_FILES, fid) is None and user_state(redis_client, "alice") == {}


def test_an_abandoned_upload_is_swept_without_any_request(api, client, alice, domain, redis_client):
    from redfile_files.maintenance.sweeper import Sweeper

    up = api.create(alice, 100).json
    api.put(alice, up["id"], 0, b"x" * 64)
    # time passes: the keys reach their deadline and the due entry comes up
    for key in file_keys(redis_client, up["id"]):
        redis_client.pexpire(key, 1)
    expire_now(redis_client, "alice", up["id"])
    time.sleep(0.01)
    assert Sweeper(domain.storage.lifecycle, domain.storage.ledger, interval=60).run_once() == 1
    assert file_keys(redis_client, up["id"]) == [] and user_state(redis_client, "alice") == {}
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 0


def test_activity_keeps_an_upload_and_the_sweep_reschedules_it(api, alice, domain, redis_client):
    up = api.create(alice, 100).json
    expire_now(redis_client, "alice", up["id"])  # due, but the upload is alive
    assert domain.storage.lifecycle.sweep_user("alice") == 1
    deadline = int(redis_client.hget(keys.upload(up["id"]), "deadline"))
    assert redis_client.zscore(keys.due("alice"), up["id"]) == deadline * 1_000_000
    assert Reserved(100) == domain.storage.ledger.holding("alice", up["id"])


def test_an_abort_that_loses_a_race_to_another_abort_leaves_no_reservation_behind(api, client, alice, domain, monkeypatch):
    """Abort A removes the upload; abort B (its ownership check passed before that) takes a newer lease,
    so A's last step yields to B: B, finding the upload gone, must settle the id itself (not 120 s later)."""
    upload_id = api.create(alice, 1000).json["id"]
    first = domain.storage.ledger.lease("alice", upload_id)
    domain.storage.files.abort(upload_id, owner="alice", not_after_us=first.fence)  # abort A, up to its last step
    real_check = domain.uploads.upload
    monkeypatch.setattr(domain.uploads, "upload", lambda owner, uid: None)  # B checked before A removed it
    with pytest.raises(ApiError) as err:
        domain.uploads.abort("alice", upload_id)  # abort B
    assert err.value.code == "upload_not_found"
    monkeypatch.setattr(domain.uploads, "upload", real_check)
    domain.storage.ledger.apply("alice", upload_id, expected=first.score, holding=None, index_ms=None, due_us=None)  # A's last step: stale
    quota = client.get("/quota", headers=alice).json
    assert quota["reserved_bytes"] == 0 and quota["used_bytes"] == 0, quota
