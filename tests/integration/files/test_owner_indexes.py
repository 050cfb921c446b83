"""The owner's name and size indexes: written in the protocol's steps, and repaired by the reconciler after a crash
between any two of them (each test runs the first steps by hand, "crashes", lets the lease run out, sweeps)."""

import json
import time

import pytest

from redfile_files.records import iso
from redfile_files.storage import keys
from redfile_files.storage.files import Changed, Late
from redfile_files.storage.records import IndexRow

from .conftest import expire_now


def names(r, user="alice") -> list[str]:
    return [m.decode() for m in r.zrange(keys.user_names(user), 0, -1)]


def entry(folder_key: str, name: str, file_id: str) -> str:
    return f"{folder_key}\0{name}\0{keys.index_id(file_id)}"


def sizes(r, user="alice") -> dict[str, int]:
    return {keys.file_id_of(m.decode()): int(s) for m, s in r.zrange(keys.user_sizes(user), 0, -1, withscores=True)}


def rows(r, user="alice") -> dict:
    return {k.decode(): json.loads(v) for k, v in r.hgetall(keys.index_rows(user)).items()}


def sweep(r, domain, fid, user="alice"):
    expire_now(r, user, fid)
    assert domain.storage.lifecycle.sweep_user(user) >= 1


def test_a_file_is_indexed_by_folder_and_case_folded_name_and_by_size(api, alice, redis_client):
    made = api.session(alice, b"12345", name="Straße.TXT", folder="/Docs/2026")
    root = api.session(alice, b"1", name="a.bin")
    assert names(redis_client) == sorted([entry("/Docs/2026/", "strasse.txt", made["id"]), entry("/", "a.bin", root["id"])])
    assert sizes(redis_client) == {made["id"]: 5, root["id"]: 1}
    assert rows(redis_client) == {}  # nothing in flight, nothing that expires


def test_a_file_that_expires_keeps_its_row_until_the_sweep_after_its_expiry(api, domain, alice, redis_client):
    made = api.session(alice, b"abc", name="Soon.txt", folder="/t", expires_in=3600)
    assert rows(redis_client) == {made["id"]: [{"f": "/t/", "n": "soon.txt"}]}
    redis_client.delete(keys.meta(made["id"]))  # its TTL ran out: the meta is gone, nothing names its entries but the row
    sweep(redis_client, domain, made["id"])
    assert (names(redis_client), sizes(redis_client), rows(redis_client)) == ([], {}, {})


def test_deleting_and_renaming_change_the_entries(api, client, alice, redis_client):
    made = api.session(alice, b"abc", name="a.txt", folder="/x")
    assert client.post(f"/files/{made['id']}/rename", headers=alice, json={"new_name": "B.txt"}).status_code == 200
    assert names(redis_client) == [entry("/x/", "b.txt", made["id"])] and rows(redis_client) == {}
    assert client.delete(f"/files/{made['id']}", headers=alice).status_code == 204
    assert (names(redis_client), sizes(redis_client), rows(redis_client)) == ([], {}, {})


def test_crash_after_charging_before_committing_unindexes(api, domain, alice, redis_client):
    up = api.create(alice, 3, chunk_size=3, folder="/c").json
    api.put(alice, up["id"], 0, b"abc")
    domain.storage.ledger.charge("alice", up["id"], 3, 123, IndexRow("/c", "File.bin"))
    assert names(redis_client) == [entry("/c/", "file.bin", up["id"])]  # crash: written, the file slot has no file
    sweep(redis_client, domain, up["id"])
    assert (names(redis_client), sizes(redis_client), rows(redis_client)) == ([], {}, {})


def test_crash_after_committing_before_settling_keeps_the_entries(api, domain, alice, redis_client):
    up = api.create(alice, 3, chunk_size=3, folder="/c").json
    api.put(alice, up["id"], 0, b"abc")
    lease = domain.storage.ledger.charge("alice", up["id"], 3, 456, IndexRow("/c", "file.bin"))
    meta = {"id": up["id"], "name": "file.bin", "folder": "/c", "size": 3, "owner": "alice", "created_ms": 456, "total_chunks": 1}
    domain.storage.files.commit(up["id"], owner="alice", total_chunks=1, size=3, meta=meta, expires_ts=None, not_after_us=lease.fence)
    assert rows(redis_client) != {}
    sweep(redis_client, domain, up["id"])
    assert names(redis_client) == [entry("/c/", "file.bin", up["id"])]
    assert sizes(redis_client) == {up["id"]: 3} and rows(redis_client) == {}


@pytest.mark.parametrize("step", ["lease", "file"])
def test_crash_in_a_delete_unindexes_only_once_the_file_is_gone(api, domain, alice, redis_client, step):
    made = api.session(alice, b"abc", name="d.txt", folder="/d")
    domain.storage.ledger.lease("alice", made["id"], (IndexRow("/d", "d.txt"),))
    if step == "file":
        domain.storage.files.delete_file(made["id"], not_after_us=int(time.time() * 1e6) + 60_000_000, only_owner="alice")
    sweep(redis_client, domain, made["id"])
    kept = [entry("/d/", "d.txt", made["id"])] if step == "lease" else []
    assert names(redis_client) == kept and rows(redis_client) == {}
    assert sizes(redis_client) == ({made["id"]: 3} if step == "lease" else {})


@pytest.mark.parametrize("step", ["lease", "file"])
def test_crash_in_a_rename_leaves_the_file_under_one_name(api, domain, alice, redis_client, step):
    made = api.session(alice, b"abc", name="old.txt", folder="/r")
    lease = domain.storage.ledger.lease("alice", made["id"], (IndexRow("/r", "old.txt"), IndexRow("/s", "new.txt")))
    assert len(names(redis_client)) == 2  # both in flight
    if step == "file":
        fields = {"name": "new.txt", "folder": "/s", "updated_at": iso(time.time())}
        assert domain.storage.files.rename(made["id"], fields, not_after_us=lease.fence, expect=("/r", "old.txt"))
    sweep(redis_client, domain, made["id"])
    want = entry("/r/", "old.txt", made["id"]) if step == "lease" else entry("/s/", "new.txt", made["id"])
    assert names(redis_client) == [want] and rows(redis_client) == {}


def test_a_rename_that_comes_too_late_changes_nothing(api, domain, alice, redis_client):
    made = api.session(alice, b"abc", name="late.txt")
    with pytest.raises(Late):
        domain.storage.files.rename(made["id"], {"name": "x"}, not_after_us=int(time.time() * 1e6) - 1_000_000, expect=("/", "late.txt"))
    assert redis_client.hget(keys.meta(made["id"]), "name") == b"late.txt"


def test_rename_keeps_working_for_owners_and_admins_only(api, client, alice, bob, admin):
    made = api.session(alice, b"abc", name="a.txt")
    done = client.post(f"/files/{made['id']}/rename", headers=alice, json={"new_name": "new name.txt"})
    assert done.status_code == 200 and done.json["name"] == "new name.txt" and done.json["created_at"] == made["created_at"]
    assert client.post(f"/files/{made['id']}/rename", headers=bob, json={"new_name": "x"}).json["error"]["code"] == "file_not_found"
    assert client.post(f"/files/{made['id']}/rename", headers=alice, json={"new_name": "../x"}).json["error"]["code"] == "invalid_name"
    assert client.post(f"/files/{made['id']}/rename", headers=admin, json={"new_name": "by admin"}).json["name"] == "by admin"
    assert client.get(f"/files/{made['id']}/meta", headers=alice).json["name"] == "by admin"


@pytest.mark.parametrize("operation", ["rename", "delete"])
def test_a_rename_landing_between_reading_a_file_and_changing_it_is_read_again(api, domain, alice, redis_client, monkeypatch, operation):
    # the soak's race: this operation read the file, another renamed it and settled, then this one went on
    made = api.session(alice, b"abc", name="first.txt", folder="/r")
    files, lifecycle = domain.storage.files, domain.storage.lifecycle
    stale = files.get_meta(made["id"])
    assert lifecycle.move("alice", made["id"], name="second.txt", folder=None, now_iso=iso(time.time()))
    reads = iter([stale])
    real = files.get_meta
    monkeypatch.setattr(files, "get_meta", lambda fid: next(reads, None) or real(fid))
    if operation == "rename":
        assert lifecycle.move("alice", made["id"], name="third.txt", folder="/s", now_iso=iso(time.time()))
        assert names(redis_client) == [entry("/s/", "third.txt", made["id"])]
    else:
        assert lifecycle.delete("alice", made["id"])
        assert names(redis_client) == []
    assert rows(redis_client) == {}


def test_a_file_renamed_under_a_step_is_not_changed_by_it(api, domain, alice, redis_client):
    made = api.session(alice, b"abc", name="mine.txt")
    later = int(time.time() * 1e6) + 60_000_000
    with pytest.raises(Changed):
        domain.storage.files.rename(made["id"], {"name": "x"}, not_after_us=later, expect=("/", "other.txt"))
    with pytest.raises(Changed):
        domain.storage.files.delete_file(made["id"], not_after_us=later, only_owner="alice", expect=("/other", "mine.txt"))
    assert redis_client.hget(keys.meta(made["id"]), "name") == b"mine.txt"
