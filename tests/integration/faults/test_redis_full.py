"""Issue 9, fault 5: Redis at maxmemory, with ``maxmemory-policy noeviction`` as the product runs it.

A Redis of the test's own with a small ``maxmemory`` (and the policy
``RedisProcess`` always sets, like helm/redfile's redis.conf), a real gunicorn
files process on it, and uploads in every state: a session with a chunk
stored, a session with every chunk stored (ready to complete), a seed upload,
a tus upload.  Filler keys then take Redis past its limit.  Every write of
bytes -- a session chunk, a seed chunk (new upload or not), a one-request file,
a text, a tus ``PATCH``, a new session, a complete -- answers 507
``insufficient_storage`` in the one JSON error shape, and leaves Redis exactly
as it was: no chunk or staging key, the same quota and ledger, the same upload
status.  Once memory is available again (``CONFIG SET maxmemory`` higher) the
very same requests succeed and the files download byte-identical.
"""

from __future__ import annotations

import base64
import os

import pytest
import redis
import requests

from redfile_dev.testing import auth_header, make_settings, redis_state, user_token
from redfile_files.settings import FilesSettings

from .helpers import OCTET, assert_file_checksums, error_code

CHUNK = 64 * 1024
FILLER = 1024 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
TUS_OCTET = {"Content-Type": "application/offset+octet-stream"}


def dump(r) -> dict:
    """Every key but the fillers (compare two to prove nothing changed)."""
    return redis_state(r, skip=lambda key: key.startswith(b"filler:"))


def full(r) -> bool:
    """Redis refuses even a tiny write for lack of memory."""
    try:
        r.set("filler:probe", b"x")
    except redis.exceptions.OutOfMemoryError:
        return True
    return False


def fill(r) -> int:
    """SET 1 MiB fillers until Redis refuses one for lack of memory; returns how many went in.

    A refused command's own query buffer counts as used memory while it is read, so a
    refused 1 MiB value leaves up to a MiB free, and Redis's usage moves by a few hundred
    bytes with every client's buffers.  So the limit is then pinned half a MiB under what
    Redis uses: every write that may grow memory is refused, whatever the buffers do.
    """
    for n in range(10_000):
        try:
            r.set(f"filler:{n}", b"\0" * FILLER)
        except redis.exceptions.OutOfMemoryError:
            break
    else:
        raise AssertionError("Redis never filled up: is maxmemory set?")
    r.config_set("maxmemory", str(r.info("memory")["used_memory"] - FILLER // 2))
    assert full(r)
    return n


@pytest.fixture
def setup(own_redis, gunicorn):
    server = own_redis(appendonly=False, extra_args=["--maxmemory", "48mb"])
    r = redis.Redis.from_url(server.url)
    assert r.config_get("maxmemory-policy") == {"maxmemory-policy": "noeviction"}
    (files,) = gunicorn("files", server.url, MAX_CHUNK_BYTES=str(CHUNK))
    alice = auth_header(user_token(make_settings(FilesSettings, server.url), r, "alice"))
    yield server, r, files.url, alice
    r.close()


def post_json(url, headers, body):
    return requests.post(url, headers=headers, json=body, timeout=15)


def test_redis_full_every_write_is_a_clean_507_and_the_same_requests_succeed_once_memory_is_freed(setup):
    _, r, base, alice = setup
    data = os.urandom(3 * CHUNK + 100)
    piece = lambda i: data[i * CHUNK : (i + 1) * CHUNK]  # noqa: E731

    def session(name, **extra):
        resp = post_json(f"{base}/uploads", alice, {"name": name, "total_size": len(data), "chunk_size": CHUNK, **extra})
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def put(upload_id, i):
        return requests.put(f"{base}/uploads/{upload_id}/chunks/{i}", headers={**alice, **OCTET}, data=piece(i), timeout=15)

    partial = session("partial.bin")  # chunk 0 stored; 1.. to come
    assert put(partial, 0).status_code == 201
    # every chunk stored: ready to complete; its SHA-256 is asked for, so the complete refused must not lose it
    whole = session("whole.bin", checksum_algorithm="sha256")
    for i in range(4):
        assert put(whole, i).status_code == 201
    seed = post_json(
        f"{base}/upload_chunk", alice, {"chunk_index": 0, "total_chunks": 2, "chunk_data": base64.b64encode(piece(0)).decode()}
    )
    assert seed.status_code == 201, seed.text
    seed_id = seed.json()["file_id"]
    tus = requests.post(f"{base}/tus/", headers={**alice, **TUS, "Upload-Length": str(len(data))}, timeout=15)
    assert tus.status_code == 201
    tus_url = base + tus.headers["Location"]

    writes = {
        "session chunk": lambda: put(partial, 1),
        "complete": lambda: requests.post(f"{base}/uploads/{whole}/complete", headers=alice, timeout=15),
        "seed chunk": lambda: requests.post(
            f"{base}/upload_chunk",
            headers={**alice, **OCTET},
            params={"file_id": seed_id, "chunk_index": 1, "total_chunks": 2},
            data=piece(1),
            timeout=15,
        ),
        "seed chunk of a new upload": lambda: requests.post(
            f"{base}/upload_chunk",
            headers=alice,
            data={"chunk_index": "0", "total_chunks": "1"},
            files={"chunk_data": ("c.bin", piece(2))},
            timeout=15,
        ),
        "one-request file": lambda: requests.post(f"{base}/files", headers=alice, files={"file": ("one.bin", piece(3))}, timeout=15),
        "text": lambda: post_json(f"{base}/texts", alice, {"name": "t.txt", "content": "hello " * 1000}),
        "new session": lambda: post_json(f"{base}/uploads", alice, {"name": "new.bin", "total_size": 10}),
        "tus patch": lambda: requests.patch(
            tus_url, headers={**alice, **TUS, **TUS_OCTET, "Upload-Offset": "0"}, data=data[: 2 * CHUNK], timeout=15
        ),
    }

    status_before = requests.get(f"{base}/uploads/{partial}", headers=alice, timeout=15).json()
    quota_before = requests.get(f"{base}/quota", headers=alice, timeout=15).json()
    state_before = dump(r)
    assert fill(r) > 0

    refused = {}
    for name, write in writes.items():
        resp = write()
        refused[name] = (resp.status_code, error_code(resp) if resp.status_code >= 400 else resp.text[:100])
    assert full(r)  # still full after them: each was refused as Redis was, not after something freed memory
    assert refused == dict.fromkeys(writes, (507, "insufficient_storage")), refused

    assert dump(r) == state_before  # nothing half-written: no chunk, no staging key, same ledger, index and uploads
    assert requests.get(f"{base}/uploads/{partial}", headers=alice, timeout=15).json() == status_before
    assert requests.get(f"{base}/quota", headers=alice, timeout=15).json() == quota_before
    assert requests.get(f"{base}/readyz", timeout=15).status_code == 200  # full is not down: reads go on

    r.config_set("maxmemory", str(512 * 1024 * 1024))  # memory is available again (a bigger limit, or data deleted)

    accepted = {name: write().status_code for name, write in writes.items()}
    assert accepted == {
        "session chunk": 201,
        "complete": 201,
        "seed chunk": 200,
        "seed chunk of a new upload": 201,
        "one-request file": 201,
        "text": 201,
        "new session": 201,
        "tus patch": 204,
    }, accepted
    for i in (2, 3):
        assert put(partial, i).status_code == 201
    done = requests.post(f"{base}/uploads/{partial}/complete", headers=alice, timeout=15)
    assert done.status_code == 201, done.text
    assert_file_checksums(done.json(), data, CHUNK, with_sha256=False)  # no SHA-256 asked for: CRC32C and composite
    whole_meta = requests.get(f"{base}/files/{whole}/meta", headers=alice, timeout=15)
    assert whole_meta.status_code == 200, whole_meta.text
    assert_file_checksums(whole_meta.json(), data, CHUNK, with_sha256=True)  # the SHA-256 it asked for, of every byte
    for upload_id in (partial, whole):
        assert requests.get(f"{base}/files/{upload_id}", headers=alice, timeout=15).content == data
    finished = requests.patch(
        tus_url, headers={**alice, **TUS, **TUS_OCTET, "Upload-Offset": str(2 * CHUNK)}, data=data[2 * CHUNK :], timeout=15
    )
    assert finished.status_code == 204
    assert requests.get(tus_url, headers={**alice, **TUS}, timeout=15).content == data
