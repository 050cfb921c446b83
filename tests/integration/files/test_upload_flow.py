"""Chunked uploads end to end through the app, on the private real Redis."""

import base64
import hashlib
import io
import os

import blake3
import google_crc32c

from redfile_files.storage import keys
from redfile_files.storage import ledger as ledger

from .conftest import chunk_at


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def crc(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def composite(pieces: list[bytes]) -> str:
    """BLAKE3 over the chunks' concatenated BLAKE3 digests, then -<number of chunks>."""
    return f"{blake3.blake3(b''.join(blake3.blake3(p).digest() for p in pieces)).hexdigest()}-{len(pieces)}"


def file_keys(r, file_id):
    return sorted(k for k in r.keys("*") if file_id.encode() in k)


def test_chunked_upload_lifecycle(client, api, alice, redis_client, unchanged):
    data = os.urandom(64 * 3 + 10)
    pieces = [data[i : i + 64] for i in range(0, len(data), 64)]

    # out of order: 2 first (creates the upload), then 0, 3, 1
    first = api.chunk(alice, 2, 4, pieces[2])
    assert first.status_code == 201
    fid = first.json["file_id"]
    assert len(fid) == 32 and first.json == {
        "file_id": fid,
        "chunk_index": 2,
        "total_chunks": 4,
        "received_chunks": 1,
        "received_bytes": 64,
    }
    assert api.chunk(alice, 0, 4, pieces[0], fid).json["received_chunks"] == 2

    # the same chunk again: a no-op success
    again = api.chunk(alice, 0, 4, pieces[0], fid)
    assert again.status_code == 200 and again.json["received_chunks"] == 2 and again.json["received_bytes"] == 128

    # different bytes at a stored index: 409, and nothing changes
    with unchanged():
        conflict = api.chunk(alice, 0, 4, b"X" * 64, fid)
    assert conflict.status_code == 409 and conflict.json["error"]["code"] == "chunk_conflict"

    api.chunk(alice, 3, 4, pieces[3], fid)
    assert api.chunk(alice, 1, 4, pieces[1], fid).json == {
        "file_id": fid,
        "chunk_index": 1,
        "total_chunks": 4,
        "received_chunks": 4,
        "received_bytes": len(data),
    }

    done = api.complete(alice, fid, len(data), name="report.pdf", mime_type="application/pdf")
    assert done.status_code == 201
    meta = done.json
    assert meta["id"] == fid and meta["name"] == "report.pdf" and meta["size"] == len(data)
    assert meta["owner"] == "alice" and meta["mime_type"] == "application/pdf" and meta["kind"] == "file"
    # a seed upload asks for no SHA-256: the file has its CRC32C and BLAKE3 composite only
    assert meta["sha256"] is None and meta["created_at"].endswith("Z")
    assert meta["crc32c"] == crc(data) and meta["composite_blake3"] == composite(pieces)
    assert set(meta) == {
        "id",
        "name",
        "size",
        "owner",
        "created_at",
        "updated_at",
        "mime_type",
        "sha256",
        "kind",
        # the whole-file checksums, the chunk layout, the expiry and encryption are metadata too
        "crc32c",
        "composite_blake3",
        "chunk_size",
        "total_chunks",
        "expires_at",
        "encrypted",
        "folder",
    }
    assert meta["expires_at"] is None and meta["total_chunks"] == 4 and meta["chunk_size"] == 64
    # upload state gone; chunks and the part table (now the file's chunk table) kept without TTL
    assert not redis_client.exists(keys.upload(fid))
    assert all(redis_client.ttl(chunk_at(redis_client, fid, i)) == -1 for i in range(4))
    assert redis_client.ttl(keys.parts(fid)) == -1

    listed = client.get("/files", headers=alice).json
    assert listed == {"items": [meta], "next_cursor": None}
    assert client.get(f"/files/{fid}/meta", headers=alice).json == meta

    download = client.get(f"/files/{fid}", headers=alice)
    assert download.status_code == 200 and download.data == data
    assert download.headers["Content-Type"] == "application/pdf"
    assert download.headers["Content-Length"] == str(len(data))
    assert download.headers["Content-Disposition"] == "attachment; filename=\"report.pdf\"; filename*=UTF-8''report.pdf"
    assert download.headers["X-Content-Type-Options"] == "nosniff"
    assert download.headers["Content-Security-Policy"] == "sandbox"
    assert download.headers["ETag"] == f'"{composite(pieces)}"'  # no SHA-256: the composite
    assert download.headers["X-Checksum-Composite"] == composite(pieces) and download.headers["X-Checksum-CRC32C"] == crc(data)
    assert "Repr-Digest" not in download.headers and "X-Checksum-SHA256" not in download.headers

    renamed = client.post(f"/files/{fid}/rename", headers=alice, json={"new_name": "Übersicht 2026.pdf"})
    assert renamed.status_code == 200 and renamed.json["name"] == "Übersicht 2026.pdf"
    assert {k: v for k, v in renamed.json.items() if k not in ("name", "updated_at")} == {
        k: v for k, v in meta.items() if k not in ("name", "updated_at")
    }
    assert "filename*=UTF-8''%C3%9Cbersicht%202026.pdf" in client.get(f"/files/{fid}", headers=alice).headers["Content-Disposition"]

    deleted = client.delete(f"/files/{fid}", headers=alice)
    assert deleted.status_code == 204 and deleted.data == b""
    assert file_keys(redis_client, fid) == []
    assert redis_client.zscore(keys.user_files("alice"), fid) is None
    assert redis_client.zscore(keys.ALL_FILES, fid) is None
    assert client.get(f"/files/{fid}", headers=alice).status_code == 404
    assert client.delete(f"/files/{fid}", headers=alice).json["error"]["code"] == "file_not_found"


def test_the_three_chunk_forms(client, alice):
    parts = [b"\x00\x01multipart\xff", b"json \xfe\x00", b"raw\r\n\x00 bytes"]
    first = client.post(
        "/upload_chunk",
        headers=alice,
        data={"chunk_index": "0", "total_chunks": "3", "chunk_data": (io.BytesIO(parts[0]), "chunk0")},
        content_type="multipart/form-data",
    )
    assert first.status_code == 201
    fid = first.json["file_id"]
    second = client.post(
        "/upload_chunk",
        headers=alice,
        json={"file_id": fid, "chunk_index": 1, "total_chunks": 3, "chunk_data": base64.b64encode(parts[1]).decode()},
    )
    assert second.status_code == 200
    third = client.post(
        f"/upload_chunk?file_id={fid}&chunk_index=2&total_chunks=3", headers=alice, data=parts[2], content_type="application/octet-stream"
    )
    assert third.status_code == 200 and third.json["received_chunks"] == 3
    whole = b"".join(parts)
    assert (
        client.post("/upload_complete", headers=alice, json={"file_id": fid, "name": "mixed.bin", "total_size": len(whole)}).status_code
        == 201
    )
    assert client.get(f"/files/{fid}", headers=alice).data == whole


def test_the_seeds_curl_examples_work_with_a_bearer_header(client, alice):
    # curl -X POST -F "chunk_data=@path/to/chunk1" -F "chunk_index=0" -F "total_chunks=5" .../upload_chunk
    chunks = [f"part {i}\n".encode() for i in range(5)]
    resp = client.post(
        "/upload_chunk", headers=alice, data={"chunk_data": (io.BytesIO(chunks[0]), "chunk1"), "chunk_index": "0", "total_chunks": "5"}
    )
    assert resp.status_code == 201
    fid = resp.json["file_id"]
    for i in range(1, 5):
        form = {"file_id": fid, "chunk_data": (io.BytesIO(chunks[i]), f"chunk{i + 1}"), "chunk_index": str(i), "total_chunks": "5"}
        assert client.post("/upload_chunk", headers=alice, data=form).status_code == 200
    size = sum(map(len, chunks))
    body = {"file_id": fid, "name": "notes.txt", "mime_type": "text/plain", "total_size": size}
    assert client.post("/upload_complete", headers=alice, json=body).status_code == 201
    assert client.get(f"/files/{fid}", headers=alice).data == b"".join(chunks)
    assert client.get("/files", headers=alice).json["items"][0]["name"] == "notes.txt"
    assert client.post(f"/files/{fid}/rename", headers=alice, json={"new_name": "renamed.txt"}).json["name"] == "renamed.txt"
    assert client.delete(f"/files/{fid}", headers=alice).status_code == 204


def test_per_chunk_checksum(api, alice, unchanged):
    good = api.chunk(alice, 0, 2, b"hello", sha256=sha(b"hello").upper())
    assert good.status_code == 201
    fid = good.json["file_id"]
    with unchanged():
        bad = api.chunk(alice, 1, 2, b"world", fid, sha256=sha(b"World"))
        assert bad.status_code == 400 and bad.json["error"]["code"] == "checksum_mismatch"
        malformed = api.chunk(alice, 1, 2, b"world", fid, sha256="xyz")
        assert malformed.status_code == 422 and "sha256" in malformed.json["error"]["details"]["json"]
        first = api.chunk(alice, 0, 2, b"hello", sha256=sha(b"other"))
        assert first.status_code == 400
    assert api.chunk(alice, 1, 2, b"world", fid, sha256=sha(b"world")).status_code == 200


def test_missing_chunks_are_named_and_the_upload_can_still_be_finished(api, client, alice, unchanged):
    fid = api.chunk(alice, 0, 4, b"aa").json["file_id"]
    api.chunk(alice, 2, 4, b"cc", fid)
    with unchanged():
        resp = api.complete(alice, fid, 8)
    assert resp.status_code == 409
    assert resp.json["error"]["code"] == "upload_incomplete"
    assert resp.json["error"]["details"] == {"missing": [1, 3], "missing_count": 2}
    api.chunk(alice, 3, 4, b"dd", fid)
    api.chunk(alice, 1, 4, b"bb", fid)
    assert api.complete(alice, fid, 8).status_code == 201
    assert client.get(f"/files/{fid}", headers=alice).data == b"aabbccdd"
    assert api.complete(alice, fid, 8).status_code == 404  # the upload is gone now


def test_the_missing_list_is_truncated_to_100(api, alice):
    fid = api.chunk(alice, 0, 250, b"x").json["file_id"]
    details = api.complete(alice, fid, 250).json["error"]["details"]
    assert details["missing"] == list(range(1, 101)) and details["missing_count"] == 249


def test_size_mismatch_then_the_right_size(api, alice, unchanged):
    fid = api.chunk(alice, 0, 1, b"12345").json["file_id"]
    with unchanged():
        resp = api.complete(alice, fid, 6)
    assert resp.status_code == 422 and resp.json["error"]["code"] == "size_mismatch"
    assert resp.json["error"]["details"] == {"declared": 6, "stored": 5}
    assert api.complete(alice, fid, 5).status_code == 201


def test_a_vanished_chunk_blocks_completion_until_it_is_sent_again(api, client, alice, redis_client, unchanged):
    fid = api.chunk(alice, 0, 3, b"aa").json["file_id"]
    api.chunk(alice, 1, 3, b"bb", fid)
    api.chunk(alice, 2, 3, b"cc", fid)
    redis_client.delete(chunk_at(redis_client, fid, 1))  # as if evicted
    with unchanged():
        resp = api.complete(alice, fid, 6)
    assert resp.status_code == 409 and resp.json["error"]["details"]["missing"] == [1]
    again = api.chunk(alice, 1, 3, b"bb", fid)
    assert again.status_code == 200 and again.json["received_bytes"] == 6
    assert api.complete(alice, fid, 6).status_code == 201
    assert client.get(f"/files/{fid}", headers=alice).data == b"aabbcc"


def test_an_upload_cannot_grow_past_max_file_bytes(make_app, settings, redis_client, unchanged):
    from redfile_dev.testing import auth_header, user_token

    app = make_app(max_file_bytes=100)
    client = app.test_client()
    headers = auth_header(user_token(settings, redis_client, "alice"))
    fid = client.post(
        "/upload_chunk", headers=headers, json={"chunk_index": 0, "total_chunks": 3, "chunk_data": base64.b64encode(b"x" * 60).decode()}
    ).json["file_id"]
    with unchanged():
        resp = client.post(
            "/upload_chunk",
            headers=headers,
            json={"file_id": fid, "chunk_index": 1, "total_chunks": 3, "chunk_data": base64.b64encode(b"y" * 41).decode()},
        )
    assert resp.status_code == 413 and resp.json["error"]["code"] == "payload_too_large"


def test_a_bigger_file_round_trips_byte_identical(api, client, alice):
    data = os.urandom(64 * 200 + 1)
    meta = api.upload(alice, data, name="big.bin")
    resp = client.get(f"/files/{meta['id']}", headers=alice, buffered=False)
    assert resp.is_streamed
    assert b"".join(resp.response) == data and meta["sha256"] is None
    pieces = [data[i : i + 64] for i in range(0, len(data), 64)]
    assert meta["crc32c"] == crc(data) and meta["composite_blake3"] == composite(pieces) and meta["total_chunks"] == 201


def test_an_empty_file(api, client, alice):
    meta = api.upload(alice, b"", name="empty")
    # the seed API sends one empty chunk
    assert meta["size"] == 0 and meta["sha256"] is None and meta["crc32c"] == crc(b"") == "00000000"
    assert meta["composite_blake3"] == composite([b""])
    resp = client.get(f"/files/{meta['id']}", headers=alice)
    assert resp.status_code == 200 and resp.data == b"" and resp.headers["Content-Length"] == "0"
    assert resp.headers["ETag"] == f'"{composite([b""])}"'


def test_if_none_match_gives_304(api, client, alice):
    meta = api.upload(alice, b"cache me")
    etag = f'"{composite([b"cache me"])}"'  # no SHA-256 (a seed upload): the ETag is the composite
    assert meta["sha256"] is None and meta["composite_blake3"] == composite([b"cache me"])
    resp = client.get(f"/files/{meta['id']}", headers={**alice, "If-None-Match": etag})
    assert resp.status_code == 304 and resp.data == b"" and resp.headers["ETag"] == etag
    assert client.get(f"/files/{meta['id']}", headers={**alice, "If-None-Match": '"other"'}).status_code == 200
    assert client.get(f"/files/{meta['id']}", headers={**alice, "If-None-Match": f'"{sha(b"cache me")}"'}).status_code == 200
    # a one-request file always has its SHA-256, and that is its ETag
    small = client.post("/files", headers=alice, json={"name": "s.txt", "data": base64.b64encode(b"cache me").decode()}).json
    assert small["sha256"] == sha(b"cache me")
    resp = client.get(f"/files/{small['id']}", headers={**alice, "If-None-Match": f'"{sha(b"cache me")}"'})
    assert resp.status_code == 304 and resp.headers["ETag"] == f'"{sha(b"cache me")}"'


def test_listing_is_newest_first_and_paginated(api, client, alice, bob, redis_client):
    ids = [api.upload(alice, f"file {i}".encode(), name=f"f{i}.txt")["id"] for i in range(5)]
    api.upload(bob, b"not alice's")
    seen, cursor, pages = [], None, 0
    while True:
        resp = client.get("/files", headers=alice, query_string={"limit": 2, **({"cursor": cursor} if cursor else {})})
        assert resp.status_code == 200 and len(resp.json["items"]) <= 2
        seen += [item["id"] for item in resp.json["items"]]
        cursor, pages = resp.json["next_cursor"], pages + 1
        if cursor is None:
            break
    assert pages == 3 and sorted(seen) == sorted(ids) and len(set(seen)) == 5
    newest_first = sorted(ids, key=lambda i: (redis_client.zscore(keys.ALL_FILES, i), i), reverse=True)
    assert seen == newest_first
    assert client.get("/files", headers=alice, query_string={"limit": 200}).json["next_cursor"] is None
