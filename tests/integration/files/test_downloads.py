"""Downloads: HEAD, one Range (206/416), ETag with If-None-Match and If-Range, safe headers, verified streams."""

import hashlib
import itertools
import random

import blake3
import google_crc32c
import pytest

from redfile_files.crypto import ChunkCorrupt
from redfile_files.storage import files as storage

from .conftest import chunk_at

DATA = random.Random("test_downloads").randbytes(64 * 5 + 30)  # fixed: test ids carry its hashes (xdist compares them)
SHA256 = hashlib.sha256(DATA).hexdigest()
# the composite of DATA in 64-byte chunks: BLAKE3 over the chunks' BLAKE3 digests, -<chunks>
COMPOSITE = f"{blake3.blake3(b''.join(blake3.blake3(DATA[i : i + 64]).digest() for i in range(0, len(DATA), 64))).hexdigest()}-6"


@pytest.fixture(autouse=True, params=["whole", 16, 7], ids=["whole chunks", "16-byte pieces", "7-byte pieces"])
def read_piece(request, monkeypatch):
    """Every test once with each chunk read back (and sent) in one piece, and in several of READ_PIECE bytes: the
    ranges, checks and cut-offs below then fall inside pieces, on their edges and across them."""
    if request.param != "whole":
        monkeypatch.setattr(storage, "READ_PIECE", request.param)
    return request.param


@pytest.fixture
def stored(api, alice):
    return api.session(alice, DATA, name="data.bin")


@pytest.fixture
def hashed(api, alice):
    """The same bytes, from an upload that asked for the file's SHA-256."""
    return api.session(alice, DATA, name="hashed.bin", checksum_algorithm="sha256")


@pytest.fixture
def seeded(api, alice):
    """Uneven chunk sizes (the seed API lets a client choose): offsets come from the part table."""
    cuts = [0, 10, 74, 75, 139, 203, 267, 331, len(DATA)]
    pieces = [DATA[a:b] for a, b in itertools.pairwise(cuts)]
    fid = api.chunk(alice, 0, len(pieces), pieces[0]).json["file_id"]
    for i, piece in enumerate(pieces[1:], start=1):
        api.chunk(alice, i, len(pieces), piece, fid)
    return api.complete(alice, fid, len(DATA), name="seed.bin").json


def get(client, headers, fid, **extra):
    return client.get(f"/files/{fid}", headers={**headers, **extra})


@pytest.mark.parametrize("which", ["stored", "seeded"])
@pytest.mark.parametrize(
    "header, start, end",
    [
        ("bytes=0-0", 0, 1),
        ("bytes=0-63", 0, 64),
        ("bytes=60-70", 60, 71),
        ("bytes=64-", 64, len(DATA)),
        ("bytes=100-1000000", 100, len(DATA)),
        ("bytes=-10", len(DATA) - 10, len(DATA)),
        ("bytes=-100000", 0, len(DATA)),
        (f"bytes={len(DATA) - 1}-", len(DATA) - 1, len(DATA)),
        ("bytes=5-9", 5, 10),
        ("bytes=140-200", 140, 201),
    ],
)
def test_one_range(request, client, alice, which, header, start, end):
    meta = request.getfixturevalue(which)
    resp = get(client, alice, meta["id"], Range=header)
    assert resp.status_code == 206, resp.data
    assert resp.data == DATA[start:end]
    assert resp.headers["Content-Range"] == f"bytes {start}-{end - 1}/{len(DATA)}"
    assert resp.headers["Content-Length"] == str(end - start) and resp.headers["Accept-Ranges"] == "bytes"


@pytest.mark.parametrize("header", [f"bytes={len(DATA)}-", f"bytes={len(DATA) + 5}-{len(DATA) + 9}"])
def test_unsatisfiable_ranges_are_416(client, alice, stored, header):
    resp = get(client, alice, stored["id"], Range=header)
    assert resp.status_code == 416 and resp.json["error"]["code"] == "range_not_satisfiable"
    assert resp.headers["Content-Range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "items=0-1", "bytes=9-5", "bytes=x-y", "garbage"])
def test_ranges_we_do_not_serve_give_the_whole_file(client, alice, stored, header):
    resp = get(client, alice, stored["id"], Range=header)
    assert resp.status_code == 200 and resp.data == DATA


@pytest.mark.parametrize("which, tag", [("stored", COMPOSITE), ("hashed", SHA256)])
def test_if_range_and_if_none_match(request, client, alice, which, tag):
    stored = request.getfixturevalue(which)
    assert stored["sha256"] == (SHA256 if which == "hashed" else None) and stored["composite_blake3"] == COMPOSITE
    etag = f'"{tag}"'  # the SHA-256 when the file has one, else its composite
    assert get(client, alice, stored["id"]).headers["ETag"] == etag
    assert get(client, alice, stored["id"], Range="bytes=0-9", **{"If-Range": etag}).status_code == 206
    stale = get(client, alice, stored["id"], Range="bytes=0-9", **{"If-Range": '"other"'})
    assert stale.status_code == 200 and stale.data == DATA
    dated = get(client, alice, stored["id"], Range="bytes=0-9", **{"If-Range": "Wed, 21 Oct 2015 07:28:00 GMT"})
    assert dated.status_code == 200
    assert get(client, alice, stored["id"], **{"If-None-Match": etag}).status_code == 304
    assert get(client, alice, stored["id"], **{"If-None-Match": etag}, Range="bytes=0-1").status_code == 304
    assert get(client, alice, stored["id"], **{"If-None-Match": '"nope"'}).status_code == 200
    other = f'"{SHA256 if tag == COMPOSITE else COMPOSITE}"'  # the file's other checksum is not its ETag
    assert get(client, alice, stored["id"], **{"If-None-Match": other}).status_code == 200
    assert get(client, alice, stored["id"], Range="bytes=0-9", **{"If-Range": other}).status_code == 200


def test_head_sends_the_headers_and_reads_nothing(client, alice, stored, hashed, redis_client):
    redis_client.delete(chunk_at(redis_client, stored["id"], 0))  # a GET would fail on it; a HEAD never looks
    resp = client.head(f"/files/{stored['id']}", headers=alice)
    assert resp.status_code == 200 and resp.data == b""
    assert stored["sha256"] is None and stored["composite_blake3"] == COMPOSITE
    assert resp.headers["Content-Length"] == str(len(DATA)) and resp.headers["ETag"] == f'"{COMPOSITE}"'
    assert resp.headers["X-Checksum-Composite"] == COMPOSITE and resp.headers["X-Checksum-CRC32C"] == f"{google_crc32c.value(DATA):08x}"
    assert "X-Checksum-SHA256" not in resp.headers and "Repr-Digest" not in resp.headers
    redis_client.delete(chunk_at(redis_client, hashed["id"], 0))
    with_sha = client.head(f"/files/{hashed['id']}", headers=alice)
    assert with_sha.status_code == 200 and with_sha.headers["ETag"] == f'"{SHA256}"' and with_sha.headers["X-Checksum-SHA256"] == SHA256
    assert with_sha.headers["X-Checksum-Composite"] == COMPOSITE
    assert resp.headers["Accept-Ranges"] == "bytes"
    ranged = client.head(f"/files/{stored['id']}", headers={**alice, "Range": "bytes=10-19"})
    assert ranged.status_code == 206 and ranged.headers["Content-Length"] == "10"


@pytest.mark.parametrize(
    "mime, disposition",
    [
        ("image/png", "inline"),
        ("text/plain; charset=utf-8", "inline"),
        ("text/html", "attachment"),
        ("image/svg+xml", "attachment"),
        ("application/pdf", "attachment"),
        ("application/octet-stream", "attachment"),
    ],
)
def test_safe_headers_for_user_content(api, client, alice, mime, disposition):
    meta = api.session(alice, b"<script>alert(1)</script>", name="x.html", mime_type=mime)
    resp = get(client, alice, meta["id"])
    assert resp.headers["Content-Disposition"].split(";")[0] == disposition
    assert resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["Content-Security-Policy"] == "sandbox"
    assert resp.headers["Content-Type"] == mime


def test_a_corrupt_first_chunk_is_a_clean_error_and_a_later_one_cuts_the_stream(client, alice, stored, redis_client):
    key0, key3 = chunk_at(redis_client, stored["id"], 0), chunk_at(redis_client, stored["id"], 3)
    original = redis_client.get(key0)
    redis_client.set(key0, b"X" + original[1:])  # same size, one byte changed: the CRC32C catches it
    resp = get(client, alice, stored["id"])
    assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt"
    assert resp.json["error"]["details"] == {"chunk_index": 0}
    redis_client.set(key0, original)

    redis_client.set(key3, b"Y" * 64)
    resp = client.get(f"/files/{stored['id']}", headers=alice, buffered=False)
    assert resp.status_code == 200
    body = iter(resp.response)
    received = b""
    with pytest.raises(ChunkCorrupt):
        for piece in body:
            received += piece
    assert received == DATA[: 64 * 3]  # everything before the bad chunk, nothing of it
    # a range that avoids the bad chunk is still served
    assert get(client, alice, stored["id"], Range="bytes=0-191").data == DATA[:192]


def test_a_chunk_missing_under_a_download(client, alice, stored, redis_client):
    redis_client.delete(chunk_at(redis_client, stored["id"], 2))
    resp = get(client, alice, stored["id"], Range="bytes=128-")
    assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt"
