"""The two Lua scripts on their own, for the races the domain's own checks cannot show."""

import pytest

from redfile_common.errors import ApiError
from redfile_files import storage

UID = "ab" * 16
NOW = "2026-01-01T00:00:00Z"


@pytest.fixture
def store(redis_client):
    return storage.FileStore(redis_client, upload_ttl=60, max_file_bytes=1000)


def put(store, index, data, create=False, owner="alice", total=3):
    return store.put_chunk(UID, owner=owner, total_chunks=total, index=index, data=data, sha256="0" * 64, create=create, now_iso=NOW)


def meta(size, total=3):
    return {"id": UID, "name": "n", "size": size, "owner": "alice", "created_at": NOW, "updated_at": NOW,
            "mime_type": "application/octet-stream", "sha256": "1" * 64, "kind": "file", "total_chunks": total}  # fmt: skip


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
    assert put(store, 1, b"x" * 997).received_bytes == 1000


def test_commit_rechecks_everything_atomically(store, redis_client, unchanged):
    put(store, 0, b"abc", create=True)
    put(store, 2, b"ghi")
    with unchanged():
        err = code(store.commit_upload, UID, owner="alice", meta=meta(9), created_ms=1)
        assert err.code == "upload_incomplete" and err.details == {"missing": [1], "missing_count": 1}
        assert code(store.commit_upload, UID, owner="bob", meta=meta(9), created_ms=1).code == "upload_not_found"
    put(store, 1, b"def")
    with unchanged():
        err = code(store.commit_upload, UID, owner="alice", meta=meta(10), created_ms=1)
        assert err.code == "size_mismatch" and err.details == {"declared": 10, "stored": 9}
        assert code(store.commit_upload, UID, owner="alice", meta=meta(9, total=4), created_ms=1).code == "upload_not_found"
    store.commit_upload(UID, owner="alice", meta=meta(9), created_ms=1)
    assert store.get_meta(UID)["size"] == 9
    assert redis_client.zscore(storage.ALL_INDEX, UID) == 1
    assert b"".join(store.iter_chunks(UID, 3)) == b"abcdefghi"
    assert not redis_client.exists(storage.upload_key(UID), storage.parts_key(UID))
    assert code(store.commit_upload, UID, owner="alice", meta=meta(9), created_ms=1).code == "upload_not_found"


def test_commit_refuses_to_overwrite_a_file(store, redis_client, unchanged):
    put(store, 0, b"a", create=True, total=1)
    redis_client.hset(storage.meta_key(UID), "id", UID)
    with unchanged():
        assert code(store.commit_upload, UID, owner="alice", meta=meta(1, total=1), created_ms=1).code == "conflict"


def test_racing_writers_and_completers(store, redis_client):
    from concurrent.futures import ThreadPoolExecutor

    put(store, 0, b"a", create=True, total=2)

    def write(i):
        data = bytes([65 + i])
        try:
            return store.put_chunk(UID, owner="alice", total_chunks=2, index=1, data=data, sha256=f"{i:064x}", create=False, now_iso=NOW)
        except ApiError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(write, range(16)))
    assert sum(1 for r in results if not isinstance(r, str)) == 1  # exactly one chunk 1 won
    assert {r for r in results if isinstance(r, str)} == {"chunk_conflict"}
    assert store.get_upload(UID).received_bytes == 2

    def complete(_):
        try:
            store.commit_upload(UID, owner="alice", meta=meta(2, total=2), created_ms=1)
            return "ok"
        except ApiError as exc:
            return exc.code

    with ThreadPoolExecutor(8) as pool:
        outcomes = list(pool.map(complete, range(8)))
    assert outcomes.count("ok") == 1 and set(outcomes) - {"ok"} <= {"upload_not_found", "conflict"}
    assert redis_client.zcard(storage.ALL_INDEX) == 1
