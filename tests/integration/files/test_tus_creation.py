"""tus creation, creation-with-upload, creation-defer-length, expiration and Upload-Metadata."""

import os

import blake3
from werkzeug.http import http_date, parse_date

from redfile_files.storage import keys

from .conftest import expire_now
from .tus_helpers import TUS, b64, metadata, upload_id


def test_creation_answers_201_with_a_location_and_reserves_the_length(tus, client, alice, redis_client):
    resp = tus.create(alice, 1000)
    assert resp.status_code == 201 and resp.data == b""
    url = resp.headers["Location"]
    assert url.startswith("/tus/") and len(upload_id(url)) == 32
    assert resp.headers["Upload-Offset"] == "0" and resp.headers["Upload-Length"] == "1000"
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 1000
    fields = redis_client.hgetall(keys.upload(upload_id(url)))
    assert fields[b"mode"] == b"tus" and fields[b"owner"] == b"alice" and fields[b"received_bytes"] == b"0"


def test_an_upload_length_over_tus_max_size_is_413(make_app, alice, unchanged):
    app = make_app(max_file_bytes=1000)
    client = app.test_client()
    assert client.options("/tus/").headers["Tus-Max-Size"] == "1000"
    with unchanged():
        resp = client.post("/tus/", headers={**alice, **TUS, "Upload-Length": "1001"})
        assert resp.status_code == 413 and resp.get_json()["error"]["details"] == {"max_file_bytes": 1000}
    assert client.post("/tus/", headers={**alice, **TUS, "Upload-Length": "1000"}).status_code == 201


def test_creation_needs_exactly_one_of_length_and_defer_length(client, alice, unchanged):
    with unchanged():
        for headers in (
            {},
            {"Upload-Length": "10", "Upload-Defer-Length": "1"},
            {"Upload-Length": "-1"},
            {"Upload-Length": "1e3"},
            {"Upload-Length": ""},
            {"Upload-Defer-Length": "0"},
            {"Upload-Defer-Length": "yes"},
        ):
            resp = client.post("/tus/", headers={**alice, **TUS, **headers})
            assert resp.status_code == 400, headers


def test_upload_metadata_becomes_the_files_name_and_type_and_is_echoed(tus, client, alice):
    data = b"name and type"
    raw = metadata(filename="résumé 2024.pdf", filetype="application/pdf") + ",is_confidential"
    url = tus.new(alice, len(data), meta=raw)
    head = tus.head(alice, url)
    assert head.headers["Upload-Metadata"] == raw
    tus.patch(alice, url, 0, data)
    meta = client.get(f"/files/{upload_id(url)}/meta", headers=alice).json
    assert (meta["name"], meta["mime_type"], meta["size"]) == ("résumé 2024.pdf", "application/pdf", len(data))
    # after completion HEAD still tells the metadata and that the upload is whole
    done = tus.head(alice, url)
    assert done.headers["Upload-Metadata"] == raw
    assert done.headers["Upload-Offset"] == done.headers["Upload-Length"] == str(len(data))
    assert "Upload-Expires" not in done.headers


def test_without_metadata_a_name_is_made_up_and_a_bad_type_falls_back(tus, client, alice):
    url = tus.new(alice, 2, meta=metadata(filetype="not a type"))
    tus.patch(alice, url, 0, b"ok")
    meta = client.get(f"/files/{upload_id(url)}/meta", headers=alice).json
    assert meta["name"] == f"upload-{upload_id(url)[:8]}" and meta["mime_type"] == "application/octet-stream"
    url = tus.new(alice, 2, meta="")  # tuspy sends an empty header when it has no metadata
    assert tus.head(alice, url).status_code == 200


def test_bad_metadata_or_a_bad_file_name_is_400_and_creates_nothing(tus, alice, unchanged):
    with unchanged():
        for raw in ("filename not-base64!", "a b,a c", " ,x", "k\tv", "filename " + "QQ==" * 2000, metadata(filename="a/b")):
            resp = tus.create(alice, 5, meta=raw)
            assert resp.status_code == 400, raw


def test_creation_with_upload_stores_the_first_bytes(tus, client, alice):
    data = os.urandom(150)
    resp = tus.create(alice, len(data), data=data[:100], meta=metadata(filename="cwu.bin"))
    assert resp.status_code == 201 and resp.headers["Upload-Offset"] == "100"
    url = resp.headers["Location"]
    assert tus.patch(alice, url, 100, data[100:]).status_code == 204
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == data
    whole = tus.create(alice, 5, data=b"hello", meta=metadata(filename="whole.txt"))
    assert whole.status_code == 201 and whole.headers["Upload-Offset"] == "5"
    assert client.get(f"/files/{upload_id(whole.headers['Location'])}", headers=alice).data == b"hello"


def test_creation_with_upload_needs_the_offset_content_type_and_a_failed_body_leaves_nothing(tus, client, alice, unchanged):
    with unchanged():
        wrong = client.post("/tus/", headers={**alice, **TUS, "Upload-Length": "5"}, data=b"hello", content_type="text/plain")
        assert wrong.status_code == 415
        bad_sum = tus.create(alice, 5, data=b"hello", headers={"Upload-Checksum": "sha1 " + b64(bytes(20))})
        assert bad_sum.status_code == 460
        too_long = tus.create(alice, 3, data=b"hello")
        assert too_long.status_code == 413
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 0


def test_a_zero_length_upload_is_a_file_at_once(tus, client, alice):
    resp = tus.create(alice, 0, meta=metadata(filename="empty.txt"))
    assert resp.status_code == 201 and resp.headers["Upload-Offset"] == "0"
    fid = upload_id(resp.headers["Location"])
    meta = client.get(f"/files/{fid}/meta", headers=alice).json
    # no chunks: CRC32C of nothing, the composite of no digests; a tus upload has no SHA-256
    assert (meta["size"], meta["total_chunks"], meta["crc32c"]) == (0, 0, "00000000")
    assert meta["composite_blake3"] == blake3.blake3(b"").hexdigest() + "-0" and meta["sha256"] is None


def test_defer_length_the_length_comes_with_a_later_patch_and_cannot_change(tus, client, alice):
    data = os.urandom(300)
    resp = tus.create(alice, defer=True, meta=metadata(filename="stream.bin"))
    assert resp.status_code == 201 and resp.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in resp.headers
    url = resp.headers["Location"]
    assert tus.patch(alice, url, 0, data[:100]).status_code == 204
    head = tus.head(alice, url)
    assert head.headers["Upload-Defer-Length"] == "1" and "Upload-Length" not in head.headers
    # bytes reserve the quota as they come, since the length is not known
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 100
    assert tus.patch(alice, url, 100, data[100:150], headers={"Upload-Length": "99"}).status_code == 400  # < offset
    resp = tus.patch(alice, url, 100, data[100:150], headers={"Upload-Length": str(len(data))})
    assert resp.status_code == 204 and resp.headers["Upload-Offset"] == "150"
    head = tus.head(alice, url)
    assert head.headers["Upload-Length"] == "300" and "Upload-Defer-Length" not in head.headers
    changed = tus.patch(alice, url, 150, data[150:200], headers={"Upload-Length": "301"})
    assert changed.status_code == 400
    assert tus.patch(alice, url, 150, data[150:] + b"x").status_code == 413  # past the length
    assert tus.patch(alice, url, 150, data[150:], headers={"Upload-Length": "300"}).status_code == 204
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == data
    quota = client.get("/quota", headers=alice).json
    assert (quota["used_bytes"], quota["reserved_bytes"]) == (300, 0)


def test_defer_length_a_patch_may_carry_only_the_length(tus, client, alice):
    url = tus.new(alice, defer=True)
    tus.patch(alice, url, 0, b"abc")
    resp = tus.patch(alice, url, 3, b"", headers={"Upload-Length": "3"})
    assert resp.status_code == 204 and resp.headers["Upload-Offset"] == "3"
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == b"abc"


def test_expiration_every_unfinished_response_tells_when_the_upload_expires(tus, alice, redis_client, settings):
    resp = tus.create(alice, 100)
    url = resp.headers["Location"]
    deadline = int(redis_client.hget(keys.upload(upload_id(url)), "deadline"))
    assert resp.headers["Upload-Expires"] == http_date(deadline)
    expires = parse_date(resp.headers["Upload-Expires"])
    assert expires is not None and abs(expires.timestamp() - deadline) < 1
    assert tus.patch(alice, url, 0, b"x" * 10).headers["Upload-Expires"] == http_date(deadline)
    assert tus.head(alice, url).headers["Upload-Expires"] == http_date(deadline)
    assert 0.9 * settings.upload_ttl <= deadline - redis_client.time()[0] <= settings.upload_ttl


def test_an_expired_upload_is_gone_and_its_reservation_returns(tus, client, alice, redis_client):
    url = tus.new(alice, 100)
    tus.patch(alice, url, 0, b"x" * 70)
    fid = upload_id(url)
    for key in redis_client.keys(f"files:{{{fid}}}:*"):  # what the keys' own TTL does at the deadline
        redis_client.delete(key)
    expire_now(redis_client, "alice", fid)
    assert tus.head(alice, url).status_code == 404
    assert tus.patch(alice, url, 70, b"x" * 30).status_code == 404
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 0
