"""Domain rules over the real storage module on fakeredis (no server).

fakeredis runs Lua only with ``lupa``, which is not installed: every Lua
script (chunk writes, completion, deletion, the quota ledger, the reconciler's
sweep) is exercised in tests/integration/files.  Everything else -- ownership,
listing and cursors, rename, reading, the checks made before a script runs --
is tested here, with the lazy sweep (a script) switched off.
"""

import hashlib
from dataclasses import dataclass

import fakeredis
import pytest

from redfile_common.errors import ApiError
from redfile_dev.testing import settings_overrides
from redfile_files.checksums import part_of
from redfile_files.crypto import ChunkCorrupt
from redfile_files.domain import FilesDomain, build_domain
from redfile_files.settings import FilesSettings
from redfile_files.storage import keys
from redfile_files.storage.records import ChunkMissing


@dataclass
class Who:
    username: str
    is_admin: bool = False


ALICE, BOB, ADMIN = Who("alice"), Who("bob"), Who("root", True)


@pytest.fixture
def r():
    return fakeredis.FakeRedis()


@pytest.fixture
def domain(r) -> FilesDomain:
    settings = FilesSettings(**settings_overrides("redis://unused:1/0", max_chunk_bytes=8, max_single_upload_bytes=16))
    domain = build_domain(settings, r, clock=lambda: 1_764_000_000.0)
    domain.storage.lifecycle.sweep_user = lambda *a, **k: 0  # type: ignore[method-assign]  # a Lua script; see the module docstring
    return domain


@pytest.fixture
def service(domain):
    return domain.catalogue


def seed_file(r, n, owner="alice", score=None, chunks=(b"ab", b"c"), kind="file"):
    file_id = f"{n:032x}"
    data = b"".join(chunks)
    score = n if score is None else score
    r.hset(
        keys.meta(file_id),
        mapping={
            "id": file_id,
            "name": f"f{n}.bin",
            "size": len(data),
            "owner": owner,
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
            "mime_type": "application/octet-stream",
            "sha256": hashlib.sha256(data).hexdigest(),
            "kind": kind,
            "total_chunks": len(chunks),
            "created_ms": score,
        },
    )
    for i, c in enumerate(chunks):
        r.set(keys.chunk(file_id, i, part_of(c).encode(), keys.LEGACY), c)  # stored as before chunks spread
        r.hset(keys.parts(file_id), i, part_of(c).encode())
    r.zadd(keys.user_files(owner), {file_id: score})
    r.zadd(keys.ALL_FILES, {file_id: score})
    return file_id


def code(fn, *args, **kw):
    with pytest.raises(ApiError) as err:
        fn(*args, **kw)
    return err.value.code


def test_owner_admin_and_service_see_a_file_others_get_404(service, r):
    fid = seed_file(r, 1)
    assert service.get_file(ALICE, fid).owner == "alice"
    assert service.get_file(ADMIN, fid).id == fid
    assert service.get_file(None, fid).size == 3
    assert code(service.get_file, BOB, fid) == "file_not_found"
    assert code(service.get_file, ALICE, "../" + fid[3:]) == "file_not_found"
    assert code(service.get_file, ALICE, f"{2:032x}") == "file_not_found"


def test_download_reads_the_chunks_in_order(service, r, domain):
    fid = seed_file(r, 1, chunks=(b"he", b"ll", b"o"))
    assert b"".join(domain.reader.read_chunks(service.get_file(ALICE, fid))) == b"hello"


def test_listing_pages_newest_first_with_ties_and_no_duplicates(service, r):
    # scores with ties: the cursor must resume inside a group of equal scores
    ids = [seed_file(r, n, score=score) for n, score in enumerate([5, 7, 7, 7, 9, 9, 1, 3], start=1)]
    expected = sorted(ids, key=lambda i: (r.zscore(keys.ALL_FILES, i), i), reverse=True)
    seen, cursor = [], None
    while True:
        items, cursor = service.list_files("alice", limit=3, cursor=cursor)
        seen += [f.id for f in items]
        if cursor is None:
            break
    assert seen == expected
    assert [f.id for f in service.list_files(None, limit=200, cursor=None)[0]] == expected
    assert service.list_files("bob", limit=3, cursor=None) == ([], None)


def test_an_exact_page_has_no_next_cursor(service, r):
    for n in range(1, 4):
        seed_file(r, n)
    items, cursor = service.list_files("alice", limit=3, cursor=None)
    assert len(items) == 3 and cursor is None


def test_a_stale_index_entry_is_skipped(service, r):
    fid = seed_file(r, 1)
    r.zadd(keys.user_files("alice"), {f"{99:032x}": 50})
    assert [f.id for f in service.list_files("alice", limit=10, cursor=None)[0]] == [fid]


def test_bad_cursor(service):
    assert code(service.list_files, "alice", limit=3, cursor="garbage!") == "validation_error"


def test_read_text_only_for_texts(service, r):
    fid = seed_file(r, 1, chunks=("héllo".encode(),), kind="text")
    record, content = service.read_text(ALICE, fid)
    assert content == "héllo" and record.kind == "text"
    assert code(service.read_text, ALICE, seed_file(r, 2)) == "file_not_found"
    assert code(service.read_text, BOB, fid) == "file_not_found"


def test_chunk_checks_before_storage_touch_nothing(service, r, domain):
    assert (
        code(domain.uploads.receive_seed_chunk, "alice", file_id="nope", index=0, total_chunks=1, data=b"x", sha256=None)
        == "upload_not_found"
    )
    assert (
        code(domain.uploads.receive_seed_chunk, "alice", file_id=None, index=0, total_chunks=1, data=b"x" * 9, sha256=None)
        == "payload_too_large"
    )
    assert (
        code(domain.uploads.receive_seed_chunk, "alice", file_id=None, index=0, total_chunks=1, data=b"x", sha256="0" * 64)
        == "checksum_mismatch"
    )
    for index, total in ((1, 1), (-1, 1), (0, 0), (0, 100_001)):
        assert (
            code(domain.uploads.receive_seed_chunk, "alice", file_id=None, index=index, total_chunks=total, data=b"x", sha256=None)
            == "invalid_chunk"
        )
    assert code(service.create_file, "alice", b"x" * 17, name="a", mime_type=None) == "payload_too_large"
    assert code(service.create_file, "alice", b"x", name="a/b", mime_type=None) == "invalid_name"
    assert code(service.create_file, "alice", b"x", name="a", mime_type="nope") == "invalid_mime_type"
    assert r.dbsize() == 0


def seed_upload(r, upload_id, owner, total, parts):
    r.hset(keys.upload(upload_id), mapping={"owner": owner, "mode": "seed", "total_chunks": total, "received_bytes": sum(parts.values())})
    for index, size in parts.items():
        r.hset(keys.parts(upload_id), index, f"{size}:{'0' * 8}:{'0' * 64}")
        r.set(keys.chunk(upload_id, index, "", keys.LEGACY), b"x" * size)


def test_completion_checks(service, r, domain):
    uid = "a" * 32
    seed_upload(r, uid, "alice", 250, {0: 1, 5: 1})
    complete = domain.completion.complete
    assert code(complete, "alice", "b" * 32, name="x", mime_type=None, total_size=2) == "upload_not_found"
    assert code(complete, "bob", uid, name="x", mime_type=None, total_size=2) == "upload_not_found"
    assert code(complete, "alice", "zz", name="x", mime_type=None, total_size=2) == "upload_not_found"
    assert code(complete, "alice", uid, name="..", mime_type=None, total_size=2) == "invalid_name"
    assert code(complete, "alice", uid, name="x", mime_type="x", total_size=2) == "invalid_mime_type"
    with pytest.raises(ApiError) as err:
        complete("alice", uid, name="x", mime_type=None, total_size=2)
    assert err.value.code == "upload_incomplete"
    assert err.value.details is not None and err.value.details["missing_count"] == 248
    assert err.value.details["missing"] == [1, 2, 3, 4, *list(range(6, 102))]

    seed_upload(r, "c" * 32, "alice", 2, {0: 3, 1: 4})
    with pytest.raises(ApiError) as err:
        complete("alice", "c" * 32, name="x", mime_type=None, total_size=8)
    assert (err.value.code, err.value.details) == ("size_mismatch", {"declared": 8, "stored": 7})


def test_a_missing_chunk_stops_a_read(service, r, domain):
    fid = seed_file(r, 1, chunks=(b"a", b"b", b"c"))
    r.delete(keys.chunk(fid, 1, "", keys.LEGACY))
    chunks = domain.reader.read_chunks(service.get_file(ALICE, fid))
    assert next(chunks) == b"a"
    with pytest.raises(ChunkMissing) as err:
        next(chunks)
    assert err.value.index == 1


def test_reads_of_a_range_cross_chunks_and_verify_each(service, r, domain):
    fid = seed_file(r, 1, chunks=(b"hello", b" wor", b"ld"))  # sizes vary: offsets come from the part table
    record = service.get_file(ALICE, fid)
    assert record.chunk_size == 0
    for start, end in ((0, 11), (3, 7), (5, 9), (9, 11), (10, 11), (0, 1)):
        assert b"".join(domain.reader.read_chunks(record, start, end)) == b"hello world"[start:end]
    r.set(keys.chunk(fid, 1, "", keys.LEGACY), b" WOR")  # same size, other bytes: the CRC32C catches it
    with pytest.raises(ChunkCorrupt) as err:
        b"".join(domain.reader.read_chunks(record))
    assert err.value.index == 1


def test_uniform_chunks_need_no_table(service, r, domain):
    fid = seed_file(r, 2, chunks=(b"abc", b"def", b"g"))
    r.hset(keys.meta(fid), "chunk_size", 3)
    record = service.get_file(ALICE, fid)
    assert b"".join(domain.reader.read_chunks(record, 2, 7)) == b"cdefg"
    assert b"".join(domain.reader.read_chunks(record, 7, 7)) == b""
