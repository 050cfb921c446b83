"""The Lua scripts on their own (file slot and user slot), for the races the domain's own checks cannot show."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from redfile_common.errors import ApiError
from redfile_files.checksums import part_of
from redfile_files.storage import keys
from redfile_files.storage.files import FileStore, Late
from redfile_files.storage.keys import UploadMode
from redfile_files.storage.ledger import Ledger
from redfile_files.storage.records import IndexRow, NewUpload, Quota, Reserved

UID = "ab" * 16
NOW = "2026-01-01T00:00:00Z"
FAR = 2**62  # a fence that never closes


@pytest.fixture
def store(redis_client):
    return FileStore(redis_client, upload_ttl=60, max_file_bytes=1000)


@pytest.fixture
def ledger(redis_client):
    return Ledger(redis_client, default_quota=1000, default_max_file=600)


def put(store, index, data, create=False, owner="alice", total=3):
    upload = NewUpload(owner=owner, mode=UploadMode.SEED, total_chunks=total, dek="", created_at=NOW) if create else None
    return store.put_chunk(
        UID, owner=owner, total_chunks=total, index=index, data=data, part=part_of(data), now_iso=NOW, create=upload, not_after_us=FAR
    )


def meta(size, total=3):
    return {
        "id": UID,
        "name": "n",
        "size": size,
        "owner": "alice",
        "created_at": NOW,
        "updated_at": NOW,
        "mime_type": "application/octet-stream",
        "sha256": "1" * 64,
        "kind": "file",
        "total_chunks": total,
        "created_ms": 1,
    }


def commit(store, size, total=3, owner="alice", fence=FAR):
    store.commit(UID, owner=owner, total_chunks=total, size=size, meta=meta(size, total), expires_ts=None, not_after_us=fence)


def code(fn, *args, **kw):
    with pytest.raises(ApiError) as err:
        fn(*args, **kw)
    return err.value


def test_put_chunk_contract(store, unchanged):
    assert put(store, 0, b"abc", create=True).stored
    with unchanged():
        assert code(put, store, 1, b"x", create=True).code == "conflict"  # the id is taken
        assert code(put, store, 1, b"x", owner="bob").code == "upload_not_found"
        assert code(put, store, 1, b"x", total=4).code == "invalid_chunk"
        assert code(put, store, 1, b"x" * 998).code == "payload_too_large"
        assert code(put, store, 0, b"abd").code == "chunk_conflict"
    again = put(store, 0, b"abc")
    assert not again.stored and again.received_bytes == 3
    assert put(store, 1, b"x" * 997).received_bytes == 1000


def session(total_chunks: int, total_size: int, chunk_size: int) -> NewUpload:
    return NewUpload(
        owner="alice",
        mode=UploadMode.SESSION,
        total_chunks=total_chunks,
        dek="",
        created_at=NOW,
        total_size=total_size,
        chunk_size=chunk_size,
    )


def test_session_chunks_must_have_their_size(store, unchanged):
    store.create_upload(UID, session(3, 10, 4), not_after_us=FAR)
    with unchanged():
        assert code(put, store, 0, b"abc").details["expected_size"] == 4
        assert code(put, store, 2, b"abc").details["expected_size"] == 2  # the last: 10 - 2 * 4
        assert code(put, store, 3, b"ab").code == "invalid_chunk"
    assert put(store, 2, b"ab").stored and put(store, 0, b"abcd").stored


def test_fenced_steps_refuse_after_their_fence(store, unchanged):
    with unchanged(), pytest.raises(Late):
        store.create_upload(UID, session(1, 1, 1), not_after_us=1)
    put(store, 0, b"a", create=True, total=1)
    with unchanged():
        with pytest.raises(Late):
            commit(store, 1, total=1, fence=1)
        with pytest.raises(Late):
            store.abort(UID, owner="alice", not_after_us=1)
    commit(store, 1, total=1)
    with unchanged(), pytest.raises(Late):
        store.delete_file(UID, not_after_us=1)
    assert store.delete_file(UID, not_after_us=FAR) == ("alice", 1)
    assert store.delete_file(UID, not_after_us=FAR) is None


def test_commit_rechecks_everything_atomically(store, redis_client, unchanged):
    put(store, 0, b"abc", create=True)
    put(store, 2, b"ghi")
    with unchanged():
        err = code(commit, store, 9)
        assert err.code == "upload_incomplete" and err.details == {"missing": [1], "missing_count": 1}
        assert code(commit, store, 9, owner="bob").code == "upload_not_found"
    put(store, 1, b"def")
    with unchanged():
        err = code(commit, store, 10)
        assert err.code == "size_mismatch" and err.details == {"declared": 10, "stored": 9}
        assert code(commit, store, 9, total=4).code == "upload_not_found"
    commit(store, 9)
    assert store.get_meta(UID)["size"] == 9
    assert b"".join(store.fetch_chunk(UID, i)[0] for i in range(3)) == b"abcdefghi"
    assert not redis_client.exists(keys.upload(UID))
    assert redis_client.ttl(keys.parts(UID)) == -1
    assert code(commit, store, 9).code == "upload_not_found"


def test_commit_refuses_to_overwrite_a_file(store, redis_client, unchanged):
    put(store, 0, b"a", create=True, total=1)
    redis_client.hset(keys.meta(UID), "id", UID)
    with unchanged():
        assert code(commit, store, 1, total=1).code == "conflict"


def test_racing_writers_and_completers(store, redis_client):
    put(store, 0, b"a", create=True, total=2)

    def write(i):
        data = bytes([65 + i])
        try:
            return put(store, 1, data, total=2)
        except ApiError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(write, range(16)))
    assert sum(1 for r in results if not isinstance(r, str)) == 1  # exactly one chunk 1 won
    assert {r for r in results if isinstance(r, str)} == {"chunk_conflict"}
    assert store.get_upload(UID).received_bytes == 2

    def complete(_):
        try:
            commit(store, 2, total=2)
            return "ok"
        except ApiError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(complete, range(8)))
    assert outcomes.count("ok") == 1 and set(outcomes) - {"ok"} <= {"upload_not_found", "conflict"}


def test_reservations_never_pass_the_quota_whatever_the_interleaving(ledger, redis_client):
    ids = [f"{i:032x}" for i in range(40)]

    def reserve(upload_id):
        try:
            ledger.reserve("alice", upload_id, 70, new=True)
            return True
        except ApiError as exc:
            assert exc.code == "quota_exceeded"
            return False

    with ThreadPoolExecutor(16) as pool:
        won = sum(pool.map(reserve, ids))
    q = ledger.quota("alice")
    assert won == 14 and q.reserved == 14 * 70 and q.used == 0  # 1000 // 70
    assert code(ledger.reserve, "alice", "f" * 32, 601, new=True).code == "payload_too_large"


def test_ledger_holdings_add_up(ledger):
    ledger.reserve("alice", UID, 100, new=True)
    ledger.reserve("alice", UID, 50, new=False)
    ledger.shrink("alice", UID, 20)
    assert ledger.holding("alice", UID) == Reserved(130) and ledger.quota("alice").reserved == 130
    lease = ledger.charge("alice", UID, 120, 7, IndexRow("/", "file.bin"))
    assert ledger.quota("alice") == Quota(None, None, 120, 0)
    assert code(ledger.reserve, "alice", UID, 1, new=False).code == "conflict"  # being completed
    assert ledger.due_score("alice", UID) == lease.score and lease.fence < lease.score
    assert ledger.apply("alice", UID, expected=lease.score - 1, holding=None, index_ms=None, due_us=None) is None  # busy
    assert ledger.apply("alice", UID, expected=lease.score, holding=None, index_ms=None, due_us=None) == "c"  # it was charged
    assert ledger.quota("alice") == Quota(None, None, 0, 0)
    assert not ledger.redis.exists(keys.quota("alice"), keys.held("alice"), keys.due("alice"))
