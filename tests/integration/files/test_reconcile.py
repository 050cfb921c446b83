"""A crash between any two steps of a multi-slot operation is repaired by the reconciler.

Each test runs the first steps of an operation by hand (as the domain would),
"crashes", lets the lease run out (its due score set to the past, as time
would), sweeps, and checks that the user's slot, the indexes and the quota
agree with the file slot again -- and that the client can carry on.
"""

import blake3
import pytest

from redfile_files.checksums import Part, part_of
from redfile_files.maintenance.sweeper import Sweeper
from redfile_files.storage import keys
from redfile_files.storage.chunks import ChunkStore
from redfile_files.storage.files import Late
from redfile_files.storage.keys import UploadMode
from redfile_files.storage.records import Charged, IndexRow, NewUpload, Reserved

from .conftest import expire_now


@pytest.fixture
def parts(domain):
    return domain.storage.files, domain.storage.ledger, domain.storage.lifecycle


def state(r, domain, user, fid):
    q = domain.storage.ledger.quota(user)
    return {
        "held": domain.storage.ledger.holding(user, fid),
        "used": q.used,
        "reserved": q.reserved,
        "user_index": r.zscore(keys.user_files(user), fid) is not None,
        "global_index": r.zscore(keys.ALL_FILES, fid) is not None,
        "due": r.zscore(keys.due(user), fid),
    }


def sweep(r, domain, user, fid):
    expire_now(r, user, fid)
    assert domain.storage.lifecycle.sweep_user(user) >= 1


def test_crash_after_reserving_before_creating(parts, domain, redis_client):
    _store, ledger, _ = parts
    fid = "1" * 32
    ledger.reserve("alice", fid, 500, new=True, lease=True)
    assert domain.storage.ledger.quota("alice").reserved == 500
    assert domain.storage.lifecycle.sweep_user("alice") == 0  # the lease holds: nobody touches it
    sweep(redis_client, domain, "alice", fid)
    assert state(redis_client, domain, "alice", fid) == {
        "held": None,
        "used": 0,
        "reserved": 0,
        "user_index": False,
        "global_index": False,
        "due": None,
    }
    assert redis_client.keys("files:*") == []


def test_a_create_that_comes_too_late_changes_nothing(parts, domain, redis_client):
    store, ledger, _ = parts
    fid = "2" * 32
    lease = ledger.reserve("alice", fid, 5, new=True, lease=True)
    sweep(redis_client, domain, "alice", fid)  # the lease ran out and the reservation was released
    with pytest.raises(Late):
        store.create_upload(fid, NewUpload("alice", UploadMode.SESSION, 1, "", "t"), not_after_us=lease.fence - 120_000_000)
    assert redis_client.keys("files:*") == []


def test_crash_after_charging_before_committing(api, client, alice, domain, redis_client):
    up = api.create(alice, 6, chunk_size=3).json
    api.put(alice, up["id"], 0, b"abc")
    api.put(alice, up["id"], 1, b"def")
    domain.storage.ledger.charge("alice", up["id"], 6, 123, IndexRow("/", "file.bin"))
    domain.storage.ledger.index_global(up["id"], 123, 6)
    # crash: the file slot still holds the upload
    assert client.get("/files", headers=alice).json["items"] == []  # the index entry has no meta: skipped
    sweep(redis_client, domain, "alice", up["id"])
    assert state(redis_client, domain, "alice", up["id"]) == {
        "held": Reserved(6),
        "used": 0,
        "reserved": 6,
        "user_index": False,
        "global_index": False,
        "due": int(redis_client.hget(keys.upload(up["id"]), "deadline")) * 1_000_000,
    }
    assert client.post(f"/uploads/{up['id']}/complete", headers=alice).status_code == 201
    assert state(redis_client, domain, "alice", up["id"])["held"] == Charged(6)


def test_crash_after_committing_before_finishing(api, client, alice, domain, redis_client):
    up = api.create(alice, 3, chunk_size=3).json
    api.put(alice, up["id"], 0, b"abc")
    lease = domain.storage.ledger.charge("alice", up["id"], 3, 456, IndexRow("/", "n"))
    domain.storage.ledger.index_global(up["id"], 456, 3)
    meta = {"id": up["id"], "name": "n", "size": 3, "owner": "alice", "created_ms": 456, "total_chunks": 1, "sha256": "0" * 64}
    domain.storage.files.commit(up["id"], owner="alice", total_chunks=1, size=3, meta=meta, expires_ts=None, not_after_us=lease.fence)
    sweep(redis_client, domain, "alice", up["id"])
    assert state(redis_client, domain, "alice", up["id"]) == {
        "held": Charged(3),
        "used": 3,
        "reserved": 0,
        "user_index": True,
        "global_index": True,
        "due": None,
    }
    assert [f["id"] for f in client.get("/files", headers=alice).json["items"]] == [up["id"]]


def test_crash_after_deleting_before_releasing(api, client, alice, domain, redis_client):
    meta = api.session(alice, b"to go", chunk=64)
    lease = domain.storage.ledger.lease("alice", meta["id"], (IndexRow("/", "file.bin"),))  # the delete's first step
    assert domain.storage.files.delete_file(meta["id"], not_after_us=lease.fence) == ("alice", 5)
    # crash: alice is still charged and indexed
    assert client.get("/quota", headers=alice).json["used_bytes"] == 5
    sweep(redis_client, domain, "alice", meta["id"])
    assert state(redis_client, domain, "alice", meta["id"]) == {
        "held": None,
        "used": 0,
        "reserved": 0,
        "user_index": False,
        "global_index": False,
        "due": None,
    }
    assert redis_client.keys("files:*") == []


def test_crash_in_the_middle_of_a_seed_chunk(api, alice, domain, redis_client):
    fid = api.chunk(alice, 0, 2, b"aa").json["file_id"]
    domain.storage.ledger.reserve("alice", fid, 50, new=False)  # the next chunk reserved, then the worker died
    assert domain.storage.ledger.holding("alice", fid) == Reserved(52)
    # over-counted, never under-counted; the completion charges what was stored
    api.chunk(alice, 1, 2, b"bb", fid)
    assert api.complete(alice, fid, 4).status_code == 201
    q = domain.storage.ledger.quota("alice")
    assert (q.used, q.reserved) == (4, 0)


def test_a_newer_lease_wins_over_a_sweep_that_read_before_it(api, alice, domain, redis_client):
    up = api.create(alice, 3).json
    expire_now(redis_client, "alice", up["id"])
    seen = domain.storage.ledger.due("alice", 10)
    domain.storage.ledger.lease("alice", up["id"])  # someone starts an operation
    assert domain.storage.lifecycle.reconcile("alice", up["id"], seen[0][1]) is False
    assert domain.storage.ledger.due_score("alice", up["id"]) > seen[0][1]


def test_the_sweep_drops_global_index_entries_of_ids_that_no_longer_exist(api, alice, domain, redis_client):
    meta = api.session(alice, b"kept", chunk=64)
    domain.storage.ledger.index_global("d" * 32, 1, 5)  # left by a crash before a commit that never came
    # the sweep itself, not run_once: a sweeper thread of an app an earlier test in this process built (default
    # SWEEP_INTERVAL) may hold the sweep lock at any moment
    domain.storage.lifecycle.sweep_all()
    assert [m.decode() for m in redis_client.zrange(keys.ALL_FILES, 0, -1)] == [meta["id"]]


def test_one_sweep_per_interval_holds_the_lock(domain, redis_client):
    redis_client.delete(keys.SWEEP_LOCK)
    assert domain.storage.ledger.try_sweep_lock(60) is True
    assert Sweeper(domain.storage.lifecycle, domain.storage.ledger, interval=60).run_once() == 0  # taken: no second sweep
    assert 0 < redis_client.ttl(keys.SWEEP_LOCK) <= 60


def test_deleting_a_user_leaves_nothing(api, client, alice, internal, domain, redis_client):
    api.session(alice, b"one", chunk=64)
    api.create(alice, 100)
    api.chunk(alice, 0, 3, b"seed")
    domain.catalogue.set_quota("alice", 10_000, None)
    resp = client.delete("/internal/owners/alice/files", headers=internal)
    assert resp.status_code == 200 and resp.json == {"deleted": 1, "shares_removed": 0}
    assert [k for k in redis_client.keys("*") if not k.startswith((b"rf:", b"auth:"))] == []  # auth's account is auth's to delete


def test_part_records_are_plaintext_checksums():
    part = part_of(b"abc")
    # size, CRC32C, BLAKE3 -- of the plaintext: the same bytes always give the same record
    assert part.encode() == f"3:364b3fb7:{blake3.blake3(b'abc').hexdigest()}" and part.crc32c == "364b3fb7"
    assert Part.decode(part.encode()) == part and Part.decode(part.encode().encode()) == part
    assert part_of(b"abd") != part


def test_the_background_sweep_of_a_worker_finds_work_with_no_request_from_its_owner(make_app, settings, redis_client):
    import time

    from redfile_dev.testing import auth_header, user_token
    from redfile_files.domain import files_domain

    app = make_app(sweep_interval=1)
    client = app.test_client()
    alice = auth_header(user_token(settings, redis_client, "alice"))
    up = client.post("/uploads", headers=alice, json={"name": "a", "total_size": 10}).json  # the first request starts it
    with app.app_context():
        sweeper = files_domain().sweeper
    try:
        assert sweeper._thread is not None and sweeper._thread.is_alive()
        for key in redis_client.keys(f"files:{{{up['id']}}}:*"):
            redis_client.delete(key)  # as if the upload's deadline had passed
        redis_client.zadd(keys.due("alice"), {up["id"]: 0})
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and redis_client.exists(keys.held("alice")):
            time.sleep(0.1)
        assert redis_client.keys("files:{u:*") == []
    finally:
        sweeper.stop()


# -- chunks in slots of their own: a crash between the file slot's step and the chunks' ---------------------
def chunk_keys(r, fid):
    return sorted(k.decode() for k in r.keys(f"files:{{{fid}.*}}:c:*"))


def crash(*_args, **_kwargs):
    raise RuntimeError("crash")


def test_a_delete_interrupted_before_its_chunks_went_is_finished_by_the_sweep(api, client, alice, domain, redis_client, monkeypatch):
    meta = api.session(alice, b"abcdefgh", chunk=3)
    stored = chunk_keys(redis_client, meta["id"])
    assert len(stored) == 3
    monkeypatch.setattr(ChunkStore, "unlink", crash)
    with pytest.raises(RuntimeError):
        domain.storage.lifecycle.delete("alice", meta["id"])
    monkeypatch.undo()
    # the file is gone at once; its chunks and its tombstone wait for the sweep
    assert client.get(f"/files/{meta['id']}", headers=alice).status_code == 404
    assert chunk_keys(redis_client, meta["id"]) == stored and redis_client.exists(keys.gone(meta["id"]))
    assert domain.storage.lifecycle.sweep_user("alice") == 0  # the lease holds
    sweep(redis_client, domain, "alice", meta["id"])
    assert redis_client.keys("files:*") == []
    assert client.get("/quota", headers=alice).json["used_bytes"] == 0


def test_an_abort_interrupted_before_its_chunks_went_is_finished_by_the_sweep(api, alice, domain, redis_client, monkeypatch):
    up = api.create(alice, 6, chunk_size=3).json
    api.put(alice, up["id"], 0, b"abc")
    api.put(alice, up["id"], 1, b"def")
    monkeypatch.setattr(ChunkStore, "unlink", crash)
    with pytest.raises(RuntimeError):
        domain.storage.lifecycle.discard("alice", up["id"])
    monkeypatch.undo()
    assert len(chunk_keys(redis_client, up["id"])) == 2 and not redis_client.exists(keys.upload(up["id"]))
    sweep(redis_client, domain, "alice", up["id"])
    assert redis_client.keys("files:*") == []


def test_a_commit_interrupted_before_its_chunks_lost_their_ttl_is_finished_by_the_sweep(
    api, client, alice, domain, redis_client, monkeypatch
):
    up = api.create(alice, 6, chunk_size=3).json
    api.put(alice, up["id"], 0, b"abc")
    api.put(alice, up["id"], 1, b"def")
    monkeypatch.setattr(ChunkStore, "settle", crash)
    assert client.post(f"/uploads/{up['id']}/complete", headers=alice).status_code == 500
    monkeypatch.undo()
    # visible at once, whole; its chunks still expire, at least UPLOAD_TTL after the commit
    assert client.get(f"/files/{up['id']}", headers=alice).data == b"abcdef"
    assert all(redis_client.ttl(k) > 0 for k in chunk_keys(redis_client, up["id"]))
    sweep(redis_client, domain, "alice", up["id"])
    assert [redis_client.ttl(k) for k in chunk_keys(redis_client, up["id"])] == [-1, -1]
    assert state(redis_client, domain, "alice", up["id"])["held"] == Charged(6)
