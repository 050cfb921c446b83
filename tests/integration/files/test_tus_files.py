"""A finished tus upload is an ordinary file; termination; quotas and size limits; offsets on the chunk store."""

import base64
import os
import random

import blake3
import google_crc32c
import pytest

from redfile_files.checksums import Part
from redfile_files.storage import keys

from .tus_helpers import upload_id


def pieces(data: bytes, chunk: int = 64) -> list[bytes]:
    return [data[i : i + chunk] for i in range(0, len(data), chunk)]


def crc32c_hex(data: bytes) -> str:
    return f"{google_crc32c.value(data):08x}"


def blake3_composite(data: bytes, chunk: int = 64) -> str:
    """The file's composite, from the bytes uploaded: BLAKE3 over its chunks' BLAKE3 digests, ``-<chunks>``."""
    chunks = pieces(data, chunk)
    return blake3.blake3(b"".join(blake3.blake3(p).digest() for p in chunks)).hexdigest() + f"-{len(chunks)}"


def test_a_finished_upload_is_listed_downloaded_renamed_and_deleted_like_any_file(tus, client, alice):
    data = os.urandom(321)
    url = tus.upload(alice, data, steps=(100, 250), name="plain.bin")
    fid = upload_id(url)
    assert [f["id"] for f in client.get("/files", headers=alice).json["items"]] == [fid]
    whole = client.get(f"/files/{fid}", headers=alice)
    # a tus upload has no SHA-256: the ETag is its composite, as computed from the bytes uploaded
    assert whole.data == data and whole.headers["ETag"] == f'"{blake3_composite(data)}"'
    assert whole.headers["X-Checksum-CRC32C"] == crc32c_hex(data) and "Repr-Digest" not in whole.headers
    # GET on the tus URL serves the same file, ranges included
    part = client.get(url, headers={**alice, "Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == data[10:20]
    assert client.get(url, headers={**alice, "If-None-Match": whole.headers["ETag"]}).status_code == 304
    assert client.post(f"/files/{fid}/rename", headers=alice, json={"new_name": "renamed.bin"}).status_code == 200
    quota = client.get("/quota", headers=alice).json
    assert (quota["used_bytes"], quota["reserved_bytes"]) == (321, 0)
    assert client.delete(f"/files/{fid}", headers=alice).status_code == 204
    assert tus.head(alice, url).status_code == 404
    assert client.get("/quota", headers=alice).json["used_bytes"] == 0


def test_get_on_an_unfinished_upload_is_409(tus, client, alice):
    url = tus.new(alice, 10)
    resp = client.get(url, headers=alice)  # no Tus-Resumable needed: browsers GET bare
    assert resp.status_code == 409 and resp.headers["Tus-Resumable"] == "1.0.0"


def test_termination_removes_the_upload_and_returns_its_reservation(tus, client, alice, redis_client):
    url = tus.new(alice, 500)
    tus.patch(alice, url, 0, os.urandom(300))
    fid = upload_id(url)
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 500
    resp = tus.delete(alice, url)
    assert resp.status_code == 204 and resp.data == b""
    assert redis_client.keys(f"files:{{{fid}}}:*") == []
    assert client.get("/quota", headers=alice).json["reserved_bytes"] == 0
    assert tus.head(alice, url).status_code == 404
    assert tus.patch(alice, url, 300, b"x").status_code == 404
    assert tus.delete(alice, url).status_code == 404


def test_terminating_a_finished_upload_deletes_its_file(tus, client, alice):
    url = tus.upload(alice, b"done and gone")
    assert tus.delete(alice, url).status_code == 204
    assert client.get(f"/files/{upload_id(url)}", headers=alice).status_code == 404
    assert client.get("/quota", headers=alice).json["used_bytes"] == 0


def test_a_retried_last_patch_after_the_file_is_made(tus, alice):
    data = os.urandom(100)
    url = tus.upload(alice, data)
    again = tus.patch(alice, url, 100, b"")
    assert again.status_code == 204 and again.headers["Upload-Offset"] == "100" and "Upload-Expires" not in again.headers
    assert tus.patch(alice, url, 0, data).status_code == 409
    assert tus.patch(alice, url, 100, b"more").status_code == 413


def test_uploads_count_against_the_quota_and_the_largest_file(tus, client, alice, internal, unchanged):
    client.put("/internal/owners/alice/quota", headers=internal, json={"quota_bytes": 1000, "max_file_bytes": 600})
    with unchanged():
        over_max = tus.create(alice, 601)
        assert over_max.status_code == 413 and over_max.get_json()["error"]["code"] == "payload_too_large"
    url = tus.new(alice, 600)
    with unchanged():
        over = tus.create(alice, 401)
        assert over.status_code == 413 and over.get_json()["error"]["code"] == "quota_exceeded"
    assert tus.patch(alice, url, 0, os.urandom(600)).status_code == 204
    # a deferred length reserves as bytes come, chunk by chunk: refused once the quota is full,
    # keeping what was stored before (here up to the chunk boundary at 384 = 6 * 64)
    deferred = tus.new(alice, defer=True)
    assert tus.patch(alice, deferred, 0, os.urandom(300)).status_code == 204
    refused = tus.patch(alice, deferred, 300, os.urandom(200))
    assert refused.status_code == 413 and refused.get_json()["error"]["code"] == "quota_exceeded"
    assert tus.offset(alice, deferred) == 384
    quota = client.get("/quota", headers=alice).json
    assert (quota["used_bytes"], quota["reserved_bytes"]) == (600, 384)


def test_a_deferred_upload_cannot_outgrow_the_largest_file(tus, client, alice, internal):
    client.put("/internal/owners/alice/quota", headers=internal, json={"quota_bytes": None, "max_file_bytes": 200})
    url = tus.new(alice, defer=True)
    assert tus.patch(alice, url, 0, os.urandom(200)).status_code == 204
    assert tus.patch(alice, url, 200, b"x").status_code == 413
    assert tus.patch(alice, url, 200, b"", headers={"Upload-Length": "200"}).status_code == 204


@pytest.mark.parametrize("encrypted", [True, False], ids=["encrypted", "plain"])
@pytest.mark.parametrize("send_ahead_min", [64 * 1024, 1], ids=["in-script", "sent-ahead"])
def test_offsets_map_onto_uniform_chunks_whatever_the_patch_sizes(make_app, settings, redis_client, monkeypatch, encrypted, send_ahead_min):
    """Random PATCH sizes: every chunk but the last is full, and the file reads back whole; with and without encryption,
    each chunk's bytes in the append script's arguments or in a SET sent ahead of it (streamed as they arrive when
    the chunk is not sealed)."""
    from redfile_dev.testing import auth_header, user_token
    from redfile_files.tus import appender as tus_appender

    from .tus_helpers import Tus

    monkeypatch.setattr(tus_appender, "SEND_AHEAD_MIN", send_ahead_min)
    overrides = {"encryption_keys": "k1:" + base64.b64encode(b"1" * 32).decode()} if encrypted else {}
    client = make_app(**overrides).test_client()
    alice = auth_header(user_token(settings, redis_client, "alice"))
    tus = Tus(client)
    rng = random.Random(4)
    for size in (1, 63, 64, 65, 640, 1001):
        data = os.urandom(size)
        steps = sorted({rng.randint(1, size) for _ in range(rng.randint(0, 8))})
        url = tus.upload(alice, data, steps=steps)
        fid = upload_id(url)
        raw = {int(k): v.decode() for k, v in redis_client.hgetall(keys.parts(fid)).items()}
        table = {i: Part.decode(v) for i, v in raw.items()}
        sizes = [table[i].size for i in range(len(table))]
        assert sizes == [64] * (size // 64) + ([size % 64] if size % 64 else []), (size, steps)
        # each record is "size:crc32c:blake3" of the plaintext of that 64-byte slice, however the PATCHes cut it
        assert [raw[i] for i in range(len(raw))] == [f"{len(p)}:{crc32c_hex(p)}:{blake3.blake3(p).hexdigest()}" for p in pieces(data)]
        meta = client.get(f"/files/{fid}/meta", headers=alice).json
        assert meta["chunk_size"] == 64 and meta["encrypted"] is encrypted and meta["sha256"] is None
        assert (meta["crc32c"], meta["composite_blake3"]) == (crc32c_hex(data), blake3_composite(data)), (size, steps)
        assert client.get(f"/files/{fid}", headers=alice).data == data
    assert list(redis_client.scan_iter(match="files:{*}:s:*")) == []


def test_an_upload_in_progress_is_also_an_upload_of_the_uploads_api(tus, client, alice):
    url = tus.new(alice, 200)
    tus.patch(alice, url, 0, os.urandom(130))
    status = client.get(f"/uploads/{upload_id(url)}", headers=alice).json
    assert (status["total_size"], status["received_bytes"], status["chunk_size"]) == (200, 130, 64)
    # but its chunks come only through tus, at its offset
    put = client.put(f"/uploads/{upload_id(url)}/chunks/3", headers=alice, data=b"x" * 8, content_type="application/octet-stream")
    assert put.status_code == 400
    assert client.delete(f"/uploads/{upload_id(url)}", headers=alice).status_code == 204
    assert tus.head(alice, url).status_code == 404
