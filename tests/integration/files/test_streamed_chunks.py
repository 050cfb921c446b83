"""Session chunks streamed into Redis as they arrive (``intake`` + ``StagedChunk``), against real Redis.

Chunks here are over ``intake.THREADED_MIN``, so the hashing threads run (smaller ones are hashed in the request thread).
"""

from __future__ import annotations

import hashlib
import io
import os

import blake3
import google_crc32c
import pytest
import redis

from redfile_common.errors import ApiError
from redfile_common.redis_client import breaker_guarding
from redfile_dev.testing import redis_state
from redfile_files.checksums import part_of
from redfile_files.storage import keys
from redfile_files.storage.staged import StagedChunk
from redfile_files.uploads import intake as intake

from .conftest import chunk_at

MIB = 1024 * 1024
CHUNK = max(intake.THREADED_MIN, 2 * intake.PIECE) + 12345  # threads hash it, and it comes in several pieces


@pytest.fixture
def app(make_app):
    return make_app(max_chunk_bytes=4 * MIB, max_single_upload_bytes=256)


def composite(pieces: list[bytes]) -> str:
    return f"{blake3.blake3(b''.join(blake3.blake3(p).digest() for p in pieces)).hexdigest()}-{len(pieces)}"


def staged_keys(redis_client, upload_id: str) -> list[bytes]:
    return list(redis_client.scan_iter(match=f"files:{{{upload_id}}}:in:*"))


def test_a_streamed_upload_is_byte_identical_and_completes_without_reading_chunks_back(
    api, client, alice, domain, redis_client, monkeypatch
):
    data = os.urandom(3 * CHUNK - 999)
    created = api.create(alice, len(data), chunk_size=CHUNK, sha256=hashlib.sha256(data).hexdigest())
    assert created.status_code == 201, created.json
    upload_id = created.json["id"]
    for index in range(3):
        piece = data[index * CHUNK : (index + 1) * CHUNK]
        resp = api.put(alice, upload_id, index, piece, **{"X-Checksum-SHA256": hashlib.sha256(piece).hexdigest()})
        assert resp.status_code == 201, resp.json
        assert resp.json["sha256"] == hashlib.sha256(piece).hexdigest() and resp.json["size"] == len(piece)
    assert redis_client.get(chunk_at(redis_client, upload_id, 1)) == data[CHUNK : 2 * CHUNK]
    assert staged_keys(redis_client, upload_id) == []

    def no_reads(*args, **kwargs):
        raise AssertionError("completion read a chunk back although this process hashed them all in order")

    monkeypatch.setattr(domain.storage.files, "fetch_chunk", no_reads)
    done = client.post(f"/uploads/{upload_id}/complete", headers=alice)
    assert done.status_code == 201, done.json
    assert done.json["sha256"] == hashlib.sha256(data).hexdigest()
    monkeypatch.undo()
    assert client.get(f"/files/{upload_id}", headers=alice).data == data


def test_chunks_out_of_order_or_repeated_still_give_the_files_digest(api, client, alice):
    data = os.urandom(4 * CHUNK)
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    created = api.create(alice, len(data), chunk_size=CHUNK, checksum_algorithm="sha256")  # the file's SHA-256, not declared
    assert created.status_code == 201 and created.json["checksum_algorithm"] == "sha256", created.json
    upload_id = created.json["id"]
    for index in (1, 0, 0, 3, 2, 1):  # running digest: 0, then stalls at 1 (arrived first); the rest is read back
        resp = api.put(alice, upload_id, index, pieces[index])
        assert resp.status_code in (200, 201), resp.json
    done = client.post(f"/uploads/{upload_id}/complete", headers=alice)
    assert done.status_code == 201 and done.json["sha256"] == hashlib.sha256(data).hexdigest()
    assert done.json["crc32c"] == f"{google_crc32c.value(data):08x}" and done.json["composite_blake3"] == composite(pieces)
    assert client.get(f"/files/{upload_id}", headers=alice).data == data


def test_without_a_sha256_asked_for_the_file_has_its_crc32c_and_composite(api, client, alice, domain, monkeypatch):
    data = os.urandom(3 * CHUNK - 7)
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    upload_id = api.create(alice, len(data), chunk_size=CHUNK).json["id"]
    for index in (2, 0, 1):
        resp = api.put(alice, upload_id, index, pieces[index])
        assert resp.status_code == 201 and resp.json["sha256"] is None, resp.json
        assert resp.json["blake3"] == blake3.blake3(pieces[index]).hexdigest()

    def no_reads(*args, **kwargs):
        raise AssertionError("completion read a chunk back although no SHA-256 was asked for")

    monkeypatch.setattr(domain.storage.files, "fetch_chunk", no_reads)
    done = client.post(f"/uploads/{upload_id}/complete", headers=alice)
    monkeypatch.undo()
    assert done.status_code == 201 and done.json["sha256"] is None, done.json
    assert done.json["crc32c"] == f"{google_crc32c.value(data):08x}" and done.json["composite_blake3"] == composite(pieces)
    assert client.get(f"/files/{upload_id}", headers=alice).data == data


def test_a_body_that_ends_early_stores_nothing(api, client, alice, redis_client, unchanged):
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    with unchanged():
        resp = client.put(
            f"/uploads/{upload_id}/chunks/0",
            headers=alice,
            content_type="application/octet-stream",
            input_stream=io.BytesIO(os.urandom(CHUNK // 2)),
            environ_overrides={"CONTENT_LENGTH": str(CHUNK)},
        )
        assert resp.status_code == 400, resp.json
    assert redis_client.exists(chunk_at(redis_client, upload_id, 0)) == 0


def test_a_checksum_mismatch_drops_the_staged_bytes(api, alice, redis_client, unchanged):
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    with unchanged():
        resp = api.put(alice, upload_id, 0, os.urandom(CHUNK), **{"X-Checksum-SHA256": "0" * 64})
        assert resp.status_code == 400 and resp.json["error"]["code"] == "checksum_mismatch"


def test_a_wrong_size_is_refused_before_the_body_is_read(api, client, alice, unchanged):
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]

    class Unread(io.BytesIO):
        def read(self, *args):
            raise AssertionError("the body was read")

        readline = readinto = read1 = read

    with unchanged():
        resp = client.put(
            f"/uploads/{upload_id}/chunks/1",
            headers=alice,
            content_type="application/octet-stream",
            input_stream=Unread(),
            environ_overrides={"CONTENT_LENGTH": str(CHUNK - 1)},
        )
        assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_chunk"
        assert resp.json["error"]["details"] == {"chunk_index": 1, "expected_size": CHUNK, "size": CHUNK - 1}


def test_different_bytes_at_a_stored_index_conflict_and_leave_no_staging(api, alice, redis_client):
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    first = os.urandom(CHUNK)
    assert api.put(alice, upload_id, 0, first).status_code == 201
    assert api.put(alice, upload_id, 0, first).status_code == 200  # the same bytes: nothing changes
    assert api.put(alice, upload_id, 0, os.urandom(CHUNK)).status_code == 409
    assert redis_client.get(chunk_at(redis_client, upload_id, 0)) == first
    assert staged_keys(redis_client, upload_id) == []


def test_redis_going_away_mid_chunk_stores_nothing(app, api, client, alice, redis_client, monkeypatch):
    """The staged SET's connection breaks half-way: a 503 to retry, Redis never created the key, and the lost
    connection counts against Redis (the breaker opens); once its probe is let through, the retry is stored."""
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    real = StagedChunk.write

    def write(self, piece):
        if self.sent >= CHUNK // 2:
            self._conn._sock.close()  # as if the connection to Redis dropped
        real(self, piece)

    monkeypatch.setattr(StagedChunk, "write", write)
    resp = api.put(alice, upload_id, 0, os.urandom(CHUNK))
    assert resp.status_code == 503 and resp.headers["Retry-After"], resp.json
    monkeypatch.undo()
    assert redis_client.exists(chunk_at(redis_client, upload_id, 0)) == 0 and staged_keys(redis_client, upload_id) == []
    breaker = breaker_guarding(app.extensions["redfile"].redis, keys.chunk_key(upload_id, 0, "staged"))  # its slot's
    assert breaker is not None and breaker.state == "open"
    opened = breaker.clock()
    breaker.clock = lambda: opened + breaker.reset_timeout  # its reset timeout is over: the next command probes
    again = os.urandom(CHUNK)
    assert api.put(alice, upload_id, 0, again).status_code == 201
    assert redis_client.get(chunk_at(redis_client, upload_id, 0)) == again


def test_a_script_redis_has_not_cached_is_loaded_and_the_chunk_stored(api, alice, redis_client):
    """The script rides behind the staged SET as an EVALSHA; a Redis without it (restarted, SCRIPT FLUSH) answers
    NOSCRIPT, and the chunk is stored through redis-py's load-and-retry instead."""
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    redis_client.script_flush()
    data = os.urandom(CHUNK)
    resp = api.put(alice, upload_id, 0, data)
    assert resp.status_code == 201 and resp.json["received_chunks"] == 1, resp.json
    assert redis_client.get(chunk_at(redis_client, upload_id, 0)) == data and staged_keys(redis_client, upload_id) == []
    assert api.put(alice, upload_id, 1, os.urandom(CHUNK)).status_code == 201  # the pool's connection is in step


def test_the_chunk_script_changes_nothing_when_its_staged_bytes_are_missing(api, alice, redis_client, domain):
    """A staged SET Redis refused (or a staging key evicted before the script) leaves the upload as it was."""
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    before = redis_state(redis_client)
    missing = keys.incoming(upload_id, 0)
    with pytest.raises(ApiError) as err:
        domain.storage.files.put_chunk(
            upload_id, owner="alice", index=0, data=None, part=part_of(b"x" * CHUNK), now_iso="2026-01-01T00:00:00Z", staged=Staged(missing)
        )
    assert err.value.code == "service_unavailable"
    assert redis_state(redis_client) == before


class Staged:
    """A staged SET that Redis refused: its key never came to exist; ``finish`` only runs the script."""

    def __init__(self, key: str) -> None:
        self.key = key

    def finish(self, script, keys, args):
        return script(keys=list(keys), args=list(args))


def test_a_chunk_script_run_again_after_it_stored_the_chunk_finds_it_unchanged(api, alice, redis_client, domain):
    """redis-py retries a script whose reply was lost; by then the staged key is renamed away: still a no-op, not staging_lost."""
    upload_id = api.create(alice, 2 * CHUNK, chunk_size=CHUNK).json["id"]
    data = os.urandom(CHUNK)
    assert api.put(alice, upload_id, 0, data).status_code == 201
    again = domain.storage.files.put_chunk(
        upload_id,
        owner="alice",
        index=0,
        data=None,
        part=part_of(data),
        now_iso="2026-01-01T00:00:00Z",
        staged=Staged(keys.incoming(upload_id, 0)),
    )
    assert not again.stored and again.received_chunks == 1 and redis_client.get(chunk_at(redis_client, upload_id, 0)) == data


@pytest.fixture
def observed(redis_url):
    from redfile_common.redis_topology import make_redis
    from redfile_common.settings import ServiceSettings
    from redfile_dev.testing import make_settings

    seen: list[tuple[str, str | None]] = []
    client = make_redis(
        make_settings(ServiceSettings, redis_url), observer=lambda c, s, e: seen.append((c, type(e).__name__ if e else None))
    )
    yield client, seen
    client.close()


def test_a_staged_set_and_its_script_report_each_command_once(observed, redis_client):
    client, seen = observed
    echo = client.register_script("-- the staged value\nreturn redis.call('GET', KEYS[1])")
    client.script_load(echo.script)
    seen.clear()
    with StagedChunk(client, "files:{t}:in:0:a", 3) as staged:
        staged.write(b"abc")
        assert staged.finish(echo, ["files:{t}:in:0:a"], []) == b"abc"
    assert seen == [("SET", None), ("EVALSHA", None)]
    assert client.ping() and client.get("files:{t}:in:0:a") == b"abc"  # the connection is in step

    seen.clear()
    redis_client.script_flush()  # as after a restart: NOSCRIPT, then loaded and run
    with StagedChunk(client, "files:{t}:in:0:b", 2) as staged:
        staged.write(b"de")
        assert staged.finish(echo, ["files:{t}:in:0:b"], []) == b"de"
    assert seen == [("SET", None), ("EVALSHA", "NoScriptError"), ("SCRIPT", None), ("EVALSHA", None)]  # NOSCRIPT once

    seen.clear()
    failing = client.register_script("return redis.error_reply('ERR refused')")
    client.script_load(failing.script)
    with pytest.raises(redis.exceptions.ResponseError), StagedChunk(client, "files:{t}:in:0:c", 1) as staged:
        staged.write(b"f")
        staged.finish(failing, ["files:{t}:in:0:c"], [])
    assert seen[-2:] == [("SET", None), ("EVALSHA", "ResponseError")]
    assert client.get("files:{t}:in:0:a") == b"abc"  # still in step after an error reply


def test_a_staged_set_abandoned_for_the_clients_fault_is_not_a_redis_error(observed, redis_client):
    client, seen = observed
    with pytest.raises(ValueError), StagedChunk(client, "files:{t}:in:0:x", 4) as staged:
        staged.write(b"ab")
        raise ValueError("a checksum that does not match")
    assert seen == [("SET", None)] and redis_client.exists("files:{t}:in:0:x") == 0
    with pytest.raises(RuntimeError):
        staged.finish()
    assert client.ping()
