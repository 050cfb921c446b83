"""tus checksum and checksum-trailer: verified bodies, 460 with nothing stored, 400 for an unknown algorithm."""

import hashlib
import os
import zlib

import google_crc32c
import pytest

from .tus_helpers import TUS, b64, chunked_with_trailers, metadata, upload_id

DIGESTS = {
    "sha1": lambda d: hashlib.sha1(d).digest(),
    "md5": lambda d: hashlib.md5(d).digest(),
    "sha256": lambda d: hashlib.sha256(d).digest(),
    "sha512": lambda d: hashlib.sha512(d).digest(),
    "crc32": lambda d: zlib.crc32(d).to_bytes(4, "big"),
    "crc32c": lambda d: google_crc32c.value(d).to_bytes(4, "big"),
}


def checksum(algorithm: str, data: bytes) -> dict:
    return {"Upload-Checksum": f"{algorithm} {b64(DIGESTS[algorithm](data))}"}


def staged_keys(r) -> list:
    return [k for k in r.keys("files:*") if b":s:" in k]


@pytest.mark.parametrize("algorithm", sorted(DIGESTS))
def test_a_body_with_a_matching_checksum_is_stored(tus, client, alice, algorithm, redis_client):
    data = os.urandom(150)  # spans three 64-byte chunks and starts in the middle of one
    url = tus.new(alice, len(data) + 10, meta=metadata(filename="sum.bin"))
    assert tus.patch(alice, url, 0, data[:10], headers=checksum(algorithm, data[:10])).status_code == 204
    resp = tus.patch(alice, url, 10, data, headers=checksum(algorithm, data))
    assert resp.status_code == 204 and resp.headers["Upload-Offset"] == str(len(data) + 10)
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == data[:10] + data
    assert staged_keys(redis_client) == []


def test_a_mismatch_is_460_the_chunk_is_discarded_and_the_offset_unchanged(tus, alice, redis_client, unchanged):
    data = os.urandom(200)
    url = tus.new(alice, 400)
    tus.patch(alice, url, 0, data[:30])
    with unchanged():
        for algorithm in ("sha1", "md5", "sha256", "crc32"):
            resp = tus.patch(alice, url, 30, data, headers=checksum(algorithm, data + b"!"))
            assert resp.status_code == 460 and resp.get_json()["error"]["code"] == "checksum_mismatch"
    assert tus.offset(alice, url) == 30
    assert staged_keys(redis_client) == []
    assert tus.patch(alice, url, 30, data, headers=checksum("sha1", data)).status_code == 204


def test_an_unknown_algorithm_or_a_malformed_checksum_is_400_and_changes_nothing(tus, alice, unchanged):
    url = tus.new(alice, 100)
    with unchanged():
        for value in (
            "sha3 AAAA",
            "SHA1 " + b64(bytes(20)),
            "whirlpool " + b64(bytes(64)),
            "sha1 not base64!",
            "sha1 " + b64(bytes(19)),
            "sha1",
        ):
            resp = tus.patch(alice, url, 0, b"abc", headers={"Upload-Checksum": value})
            assert resp.status_code == 400, value
    assert "supported" in tus.patch(alice, url, 0, b"abc", headers={"Upload-Checksum": "sha3 AAAA"}).get_json()["error"]["details"]


def test_a_checksum_trailer_is_verified_after_the_chunked_body(tus, client, alice, redis_client):
    data = os.urandom(100)
    url = tus.new(alice, len(data), meta=metadata(filename="trailer.bin"))
    announce = {**alice, **TUS, "Upload-Offset": "0", "Trailer": "Upload-Checksum", "Transfer-Encoding": "chunked"}
    bad = client.patch(
        url,
        headers=announce,
        content_type="application/offset+octet-stream",
        **chunked_with_trailers(data, [("UPLOAD-CHECKSUM", f"sha1 {b64(hashlib.sha1(b'other').digest())}")]),
    )
    assert bad.status_code == 460 and tus.offset(alice, url) == 0
    missing = client.patch(url, headers=announce, content_type="application/offset+octet-stream", **chunked_with_trailers(data, []))
    assert missing.status_code == 400 and tus.offset(alice, url) == 0
    unknown = client.patch(
        url,
        headers=announce,
        content_type="application/offset+octet-stream",
        **chunked_with_trailers(data, [("Upload-Checksum", "md4 AAAA")]),
    )
    assert unknown.status_code == 400 and tus.offset(alice, url) == 0
    good = client.patch(
        url,
        headers=announce,
        content_type="application/offset+octet-stream",
        **chunked_with_trailers(data, [("Upload-Checksum", f"sha256 {b64(hashlib.sha256(data).digest())}")]),
    )
    assert good.status_code == 204 and good.headers["Upload-Offset"] == "100"
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == data
    assert staged_keys(redis_client) == []
