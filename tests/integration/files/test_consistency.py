"""The consistency checker on a real Redis: a healthy store is clean, every planted fault is found.

Each fault test builds a small healthy store through the files API (the
Flask test client; 64-byte chunks), checks that it reports clean, plants one
fault with plain Redis commands, and checks that the checker names it.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import sys

import pytest

from redfile_dev.testing import test_env as service_env
from redfile_files.checksums import part_of
from redfile_files.domain import FilesDomain, files_domain
from redfile_files.maintenance.consistency import ConsistencyChecker
from redfile_files.maintenance.consistency.repair import make_due
from redfile_files.maintenance.consistency.walk import Walk
from redfile_files.storage import files as storage
from redfile_files.storage import keys
from redfile_files.storage.keys import classify
from redfile_files.storage.records import IndexRow

from .conftest import chunk_at, expire_now
from .share_helpers import files_keys, make_link
from .tus_helpers import Tus, metadata

KEY = base64.b64encode(b"k" * 32).decode()
GHOST = "f" * 32  # an id that is neither file nor upload


def domain_of(app) -> FilesDomain:
    with app.app_context():
        return files_domain()


def checker_of(domain: FilesDomain, **kwargs) -> ConsistencyChecker:
    return ConsistencyChecker(domain.storage, domain.verifier, **kwargs)


@pytest.fixture
def checker(domain):
    return checker_of(domain, settle=0)


@pytest.fixture
def store(api, client, alice, bob):
    """Files of every kind, uploads in progress of every kind, a link and a recipient."""
    seed = api.upload(alice, bytes(range(200)), name="seed.bin")  # 4 chunks of 64, the last 8 bytes
    session = api.session(alice, os.urandom(150), name="session.bin")
    text = client.post("/texts", headers=alice, json={"name": "t.txt", "content": "hello"}).json
    empty = api.session(bob, b"", name="empty.bin")
    open_session = api.create(alice, 300, name="open.bin", chunk_size=64).json  # 2 of 5 chunks
    api.put(alice, open_session["id"], 0, os.urandom(64))
    api.put(alice, open_session["id"], 3, os.urandom(64))
    open_seed = api.chunk(bob, 1, 3, b"x" * 64).json  # a seed upload with its middle chunk only
    tus = Tus(client)
    url = tus.new(bob, 100, meta=metadata(filename="t.bin"))
    assert tus.patch(bob, url, 0, b"y" * 70).status_code == 204
    link = make_link(client, alice, seed["id"], max_downloads=3)
    assert client.post(f"/files/{session['id']}/recipients", headers=alice, json={"username": "bob"}).status_code in (200, 201)
    return {
        "seed": seed,
        "session": session,
        "text": text,
        "empty": empty,
        "open": open_session,
        "open_seed": open_seed,
        "tus": url.rsplit("/", 1)[1],
        "link": link,
    }


def problems(report, kind=None) -> list[dict]:
    return [p for p in report["problems"] if kind is None or p["kind"] == kind]


def test_a_healthy_store_with_uploads_in_progress_is_clean(store, checker, redis_client):
    report = checker.check()
    assert report["ok"], json.dumps(report["problems"], indent=1)
    assert report["complete"] and report["errors"] == 0 and report["stale"] == 0 and report["pending"] == []
    s = report["summary"]
    assert (s["files"], s["uploads"], s["shares"]) == (4, 3, 1)
    assert s["file_bytes"] == 200 + 150 + 5
    users = {row["user"]: row for row in report["users"]}
    assert users["alice"]["used"] == users["alice"]["charged"] == users["alice"]["files_bytes"] == 355
    assert users["alice"]["reserved"] == users["alice"]["reservations"] == 300
    assert users["bob"]["used"] == 0 and users["bob"]["reserved"] == users["bob"]["reservations"] == 64 + 100
    assert all(row["ok"] for row in users.values())


@pytest.mark.parametrize("read_piece", [storage.READ_PIECE, 5], ids=["whole chunks", "5-byte pieces"])
def test_deep_reads_every_file_through_the_download_path(store, checker, monkeypatch, read_piece):
    monkeypatch.setattr(storage, "READ_PIECE", read_piece)  # a chunk read back in pieces is still checked as one
    report = checker.check(deep=True)
    assert report["ok"], report["problems"]
    assert report["summary"]["bytes_verified"] == 355


def snapshot(r) -> dict:
    """Every files:* key: its value and its expiry (the audit stream, which reads do not touch, is left out)."""
    return {key: (value, r.pttl(key) != -1) for key, value in files_keys(r).items()}


def test_the_check_writes_nothing(store, checker, redis_client):
    before = snapshot(redis_client)
    assert checker.check(deep=True)["ok"]
    assert snapshot(redis_client) == before


# -- planted faults -----------------------------------------------------------------------
def _chunk(r, store, name="seed", index=1) -> str:
    return chunk_at(r, store[name]["id"], index)


FAULTS = {
    "missing chunk": (lambda r, st: r.delete(_chunk(r, st)), "chunk_missing"),
    "wrong chunk size": (lambda r, st: r.set(_chunk(r, st), b"short"), "chunk_size_wrong"),
    "chunk of an upload never expires": (lambda r, st: r.persist(chunk_at(r, st["open"]["id"], 3)), "key_expiry_wrong"),
    "chunk of a permanent file expires": (lambda r, st: r.expire(_chunk(r, st), 3600), "key_expiry_wrong"),
    "usage drift": (lambda r, st: r.hincrby(keys.quota("alice"), "used", 7), "usage_drift"),
    "reservation drift": (lambda r, st: r.hincrby(keys.quota("bob"), "reserved", -1), "reservation_drift"),
    "file not charged": (lambda r, st: r.hset(keys.held("alice"), st["seed"]["id"], "c:199"), "file_not_charged"),
    "upload not reserved": (lambda r, st: r.hset(keys.held("alice"), st["open"]["id"], "r:10"), "upload_not_reserved"),
    "upload not counted": (lambda r, st: r.zrem(keys.ALL_UPLOADS, st["tus"]), "upload_not_counted"),
    "orphan chunk key": (lambda r, st: r.set(keys.chunk(GHOST, 0, part_of(b"left behind").encode()), b"left behind"), "orphan_key"),
    "chunk outside its table": (lambda r, st: r.set(keys.chunk(st["seed"]["id"], 9, part_of(b"x").encode()), b"x"), "orphan_key"),
    "chunk table of nothing": (lambda r, st: r.hset(keys.parts(GHOST), 0, "1:" + "0" * 64 + ":00000000"), "orphan_key"),
    "staging key without TTL": (lambda r, st: r.set(keys.incoming(st["open"]["id"], 1), b"x"), "orphan_key"),
    "user index entry of a missing file": (lambda r, st: r.zadd(keys.user_files("alice"), {GHOST: 1}), "index_without_charge"),
    "global index entry of a missing file": (lambda r, st: r.zadd(keys.ALL_FILES, {GHOST: 1}), "dangling_index_entry"),
    "global size drift": (lambda r, st: r.incrby(keys.ALL_BYTES, 3), "global_bytes_drift"),
    "stale count of uploads": (lambda r, st: r.zadd(keys.ALL_UPLOADS, {GHOST: 1}), "upload_count_stale"),
    "holding of a missing id": (
        lambda r, st: (r.hset(keys.held("alice"), GHOST, "c:5"), r.hincrby(keys.quota("alice"), "used", 5)),
        "dangling_holding",
    ),
    "due entry of nothing": (lambda r, st: r.zadd(keys.due("alice"), {GHOST: 9_000_000_000_000_000}), "orphan_due"),
    "share to a missing file": (
        lambda r, st: r.hset(keys.share(GHOST, "a" * 32), mapping={"id": "a" * 32, "file_id": GHOST}),
        "orphan_share",
    ),
    "share list of a missing file": (lambda r, st: r.hset(f"files:{{{GHOST}}}:shares", "a" * 32, "x"), "orphan_share"),
    "password checks that never expire": (lambda r, st: r.zadd(f"files:{{l:{'e' * 64}}}:pwcheck", {"a": 1}), "orphan_link"),
    "link lookup of a missing share": (lambda r, st: r.set(f"files:{{l:{'e' * 64}}}:link", f"{GHOST}:{'a' * 32}"), "orphan_link"),
    "share without its lookup": (
        lambda r, st: r.delete(f"files:{{l:{r.hget(keys.share(st['seed']['id'], st['link']['id']), 'token_sha256').decode()}}}:link"),
        "share_link_missing",
    ),
    "share missing from its owner's links": (lambda r, st: r.hdel(keys.user_links("alice"), st["link"]["id"]), "share_not_in_owner_links"),
    "recipient without the file in their inbox": (lambda r, st: r.hdel(keys.inbox("bob"), st["session"]["id"]), "recipient_not_in_inbox"),
    "unknown key family": (lambda r, st: r.set("files:{xyz}:what", b"?"), "unknown_key"),
    "unknown key of a file": (lambda r, st: r.set(f"files:{{{st['seed']['id']}}}:thumbnail", b"?"), "unknown_key"),
    "files key without a tag": (lambda r, st: r.set("files:loose", b"?"), "unknown_key"),
    "wrong type": (lambda r, st: (r.delete(keys.due("carol")), r.set(keys.due("carol"), b"1")), "wrong_type"),
    "incomplete file record": (lambda r, st: r.hdel(keys.meta(st["text"]["id"]), "name"), "file_record_incomplete"),
    "file record with a malformed sha256": (lambda r, st: r.hset(keys.meta(st["text"]["id"]), "sha256", "xyz"), "file_record_incomplete"),
    "parts that do not add up": (lambda r, st: r.hset(keys.meta(st["seed"]["id"]), "size", 201), "size_mismatch"),
    "sweep lock without TTL": (lambda r, st: r.set(keys.SWEEP_LOCK, b"x"), "bad_value"),
    "files missing from the name index": (lambda r, st: r.delete(keys.user_names("alice")), "file_not_indexed"),
    "file missing from the size index": (
        lambda r, st: r.zrem(keys.user_sizes("alice"), keys.index_id(st["seed"]["id"])),
        "file_not_indexed",
    ),
    "file under a name it does not have": (
        lambda r, st: r.zadd(keys.user_names("alice"), {_entry("/x/", "y", st["seed"]["id"]): 0}),
        "stale_name_entry",
    ),
    "name entry of a missing file": (lambda r, st: r.zadd(keys.user_names("alice"), {_entry("/", "ghost", GHOST): 0}), "stale_name_entry"),
    "name entry that is no entry": (lambda r, st: r.zadd(keys.user_names("alice"), {"garbage": 0}), "stale_name_entry"),
    "size entry of a missing file": (lambda r, st: r.zadd(keys.user_sizes("alice"), {keys.index_id(GHOST): 5}), "stale_size_entry"),
    "row in flight of nothing in flight": (
        lambda r, st: r.hset(keys.index_rows("alice"), st["seed"]["id"], '[{"f":"/","n":"x"}]'),
        "stale_index_row",
    ),
}


def _entry(folder_key: str, name: str, file_id: str) -> str:
    return f"{folder_key}\0{name}\0{keys.index_id(file_id)}"


@pytest.mark.parametrize("name", sorted(FAULTS))
def test_each_planted_fault_is_found(name, store, checker, redis_client):
    assert checker.check()["ok"]
    plant, kind = FAULTS[name]
    plant(redis_client, store)
    report = checker.check()
    assert not report["ok"]
    assert problems(report, kind), (kind, report["problems"])
    assert report["counts"][kind] >= 1
    assert report["errors"] >= 1


def test_a_file_record_without_a_sha256_is_fine(store, checker, redis_client):
    # only files whose upload asked for it have a SHA-256 (the seed and session files here have none)
    assert store["seed"]["sha256"] is None and store["session"]["sha256"] is None and store["text"]["sha256"]
    redis_client.hset(keys.meta(store["text"]["id"]), "sha256", "")  # as the service writes a file without one
    report = checker.check(deep=True)
    assert report["ok"], report["problems"]
    assert report["summary"]["bytes_verified"] == 355  # every file still read and checked (CRC32C, composite)


def test_a_problem_names_the_key_the_id_and_the_user(store, checker, redis_client):
    redis_client.delete(_chunk(redis_client, store))
    (p,) = problems(checker.check(), "chunk_missing")
    assert p == {
        "kind": "chunk_missing",
        "severity": "error",
        "key": keys.meta(store["seed"]["id"]),
        "detail": "chunks not stored: 1",
        "id": store["seed"]["id"],
        "user": "alice",
    }
    user = {row["user"]: row for row in checker.check()["users"]}["alice"]
    assert user["ok"] is False


def test_corrupted_bytes_are_found_only_by_a_deep_check(store, checker, redis_client):
    key = _chunk(redis_client, store)
    data = bytearray(redis_client.get(key))
    data[10] ^= 0xFF  # the same length: only reading the bytes shows it
    redis_client.set(key, bytes(data))
    assert checker.check()["ok"]
    report = checker.check(deep=True)
    assert not report["ok"]
    (p,) = problems(report, "data_corrupt")
    assert p["id"] == store["seed"]["id"] and "chunk 1" in p["detail"]


def test_deep_opens_encrypted_chunks_and_finds_a_tampered_one(make_app, api, alice, redis_client):
    app = make_app(encryption_keys=f"k1:{KEY}")
    checker = checker_of(domain_of(app), settle=0)
    from .conftest import Api

    record = Api(app.test_client()).upload(alice, os.urandom(300))
    report = checker.check(deep=True)
    assert report["ok"], report["problems"]
    assert report["summary"]["bytes_verified"] == 300
    key = chunk_at(redis_client, record["id"], 2)
    sealed = bytearray(redis_client.get(key))
    assert len(sealed) == 64 + 28  # stored sealed: the size check knows the overhead
    sealed[-1] ^= 1
    redis_client.set(key, bytes(sealed))
    assert problems(checker.check(deep=True), "data_corrupt")


def test_stale_links_and_inbox_entries_fail_only_a_strict_check(store, checker, redis_client):
    redis_client.hset(keys.user_links("alice"), "b" * 32, GHOST)
    redis_client.hset(keys.inbox("bob"), GHOST, "alice")
    report = checker.check()
    assert report["ok"] and report["stale"] == 2 and report["errors"] == 0
    assert {p["kind"] for p in report["problems"]} == {"stale_link_entry", "stale_inbox_entry"}
    assert not checker.check(strict=True)["ok"]


# -- live traffic: leases, due ids, staging keys, confirmation ------------------------------
def test_an_operation_in_flight_is_pending_not_a_problem(store, checker, domain, redis_client):
    up = store["open"]["id"]
    for i in (1, 2, 4):
        redis_client.hset(keys.parts(up), i, redis_client.hget(keys.parts(up), 0))  # not real chunks: never completed
    domain.storage.ledger.charge(
        "alice", up, 300, 123, IndexRow("/", "file.bin")
    )  # a completion that charged, then "crashed" before its commit
    domain.storage.ledger.index_global(up, 123, 300)
    redis_client.hdel(keys.parts(up), 1, 2, 4)
    report = checker.check()
    assert report["ok"], report["problems"]
    (row,) = report["pending"]
    assert row["id"] == up and row["reason"] == "leased" and row["user"] == "alice"
    expire_now(redis_client, "alice", up)  # the lease ran out: the sweep will repair it
    report = checker.check()
    assert report["ok"] and report["pending"][0]["reason"] == "due"
    domain.storage.lifecycle.sweep_user("alice")
    report = checker.check()
    assert report["ok"] and report["pending"] == []


def test_staging_keys_within_their_ttl_are_transient(store, checker, redis_client):
    redis_client.set(keys.incoming(store["open"]["id"], 1), b"x", ex=60)
    redis_client.set(keys.tus_staging(store["tus"], 0, "b" * 16, 0), b"x", ex=600)
    # a chunk no record names (a refused write, a tus tail's earlier version) is transient while it expires
    redis_client.set(keys.chunk(store["open"]["id"], 1, part_of(b"late").encode()), b"late", ex=600)
    report = checker.check()
    assert report["ok"] and report["summary"]["transient_keys"] == 3


def test_a_problem_gone_when_looked_at_again_is_not_reported(store, domain, redis_client):
    """A share outlives its file for the moment a delete takes to purge it: the second look settles it."""
    fake_share = keys.share(GHOST, "a" * 32)
    redis_client.hset(fake_share, mapping={"id": "a" * 32, "file_id": GHOST})
    looked_again = []

    def settle(seconds):
        looked_again.append(seconds)
        redis_client.delete(fake_share)  # the purge landed meanwhile

    checker = checker_of(domain, settle=5, clock=lambda: 100.0, sleep=settle)
    report = checker.check()
    assert looked_again == [5]
    assert report["ok"] and report["problems"] == []


def test_the_time_budget_ends_the_walk_and_the_report_says_so(store, domain):
    ticks = iter(range(0, 10_000, 10))
    checker = checker_of(domain, settle=0, clock=lambda: float(next(ticks)))
    report = checker.check(max_seconds=5)
    assert report["complete"] is False and report["ok"] is False


# -- repair ---------------------------------------------------------------------------------
def test_repair_is_off_by_default_and_does_only_the_services_own_repairs(store, checker, redis_client):
    redis_client.hset(keys.held("alice"), GHOST, "c:5")
    redis_client.hincrby(keys.quota("alice"), "used", 5)
    redis_client.zadd(keys.ALL_FILES, {"e" * 32: 1})
    redis_client.zadd(keys.ALL_UPLOADS, {"d" * 32: 1})
    redis_client.hset(keys.inbox("bob"), GHOST, "alice")
    redis_client.hset(keys.share(GHOST, "a" * 32), mapping={"id": "a" * 32, "file_id": GHOST})
    redis_client.delete(_chunk(redis_client, store, "session", 0))  # not the service's to repair
    state = snapshot(redis_client)
    before = checker.check()
    assert snapshot(redis_client) == state
    assert set(before["counts"]) == {
        "dangling_holding",
        "dangling_index_entry",
        "upload_count_stale",
        "stale_inbox_entry",
        "orphan_share",
        "chunk_missing",
    }
    after = checker.check(repair=True, strict=True)
    assert set(after["counts"]) == {"chunk_missing"}
    assert {r["action"] for r in after["repairs"]} >= {"reconcile", "sweep", "unindex", "uncount_upload", "forget_inbox", "purge_shares"}
    assert redis_client.hget(keys.held("alice"), GHOST) is None
    assert int(redis_client.hget(keys.quota("alice"), "used")) == 355


def test_repair_leaves_an_id_alone_when_a_lease_is_taken(store, checker, domain, redis_client):
    redis_client.hset(keys.held("alice"), GHOST, "c:5")
    redis_client.hincrby(keys.quota("alice"), "used", 5)
    walk = Walk(checker.sources, deep=False, deadline=None)
    walk.tick()
    domain.storage.ledger.lease("alice", GHOST)  # an operation started after the check looked
    assert make_due(walk, domain.storage, "alice", GHOST) is False
    assert redis_client.hget(keys.held("alice"), GHOST) == b"c:5"


# -- the ways to run it -------------------------------------------------------------------------
def test_the_internal_endpoint_answers_a_service_token_only(store, client, internal, alice, redis_client):
    assert client.get("/internal/consistency", headers=alice).status_code == 401
    resp = client.get("/internal/consistency?deep=true", headers=internal)
    assert resp.status_code == 200, resp.json
    assert resp.json["ok"] is True and resp.json["deep"] is True and resp.json["summary"]["bytes_verified"] == 355
    redis_client.zadd(keys.ALL_FILES, {GHOST: 1})
    body = client.get("/internal/consistency", headers=internal).json
    assert body["ok"] is False and body["counts"] == {"dangling_index_entry": 1}
    assert client.get("/internal/consistency?max_seconds=0", headers=internal).status_code == 422


def _env(redis_url, **extra) -> dict:
    return {**os.environ, **service_env(redis_url, SERVICE_NAME="files", **extra)}


def test_the_command_prints_json_and_exits_non_zero_on_a_problem(store, redis_url, redis_client):
    cmd = [sys.executable, "-m", "redfile_files.maintenance.consistency", "--settle", "0"]
    done = subprocess.run([*cmd, "--deep"], env=_env(redis_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr + done.stdout
    report = json.loads(done.stdout)
    assert report["ok"] and report["summary"]["bytes_verified"] == 355
    redis_client.set(keys.chunk(GHOST, 0, part_of(b"x").encode()), b"x")
    done = subprocess.run([*cmd, "--summary"], env=_env(redis_url), capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    report = json.loads(done.stdout)
    assert report["counts"] == {"orphan_key": 1} and "users" not in report


def test_the_command_cannot_run_without_settings(redis_url):
    env = _env(redis_url, REDFILE_ENV="production", APP_SECRET_KEY="")
    done = subprocess.run(
        [sys.executable, "-m", "redfile_files.maintenance.consistency"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert "APP_SECRET_KEY" in done.stderr and done.stdout == ""


def test_every_family_of_the_architecture_is_known():
    """The key spaces of docs/architecture.md's table, each classified (and nothing else under files:)."""
    fid, user, sha = "0" * 32, "u:alice", "1" * 64
    known = [
        f"files:{{{fid}}}:{p}"
        for p in (
            "upload",
            "parts",
            "meta",
            "shares",
            "recipients",
            "c:0",
            "c:17",
            "gone",
            f"share:{'c' * 32}",
            f"resume:{'c' * 32}:{'d' * 32}",
        )
    ]
    known += [f"files:{{{fid}.3}}:{p}" for p in (f"c:{'e' * 16}", f"in:{'a' * 16}", f"s:{'b' * 16}:0")]
    known += [f"files:{{{user}}}:{p}" for p in ("quota", "held", "files", "due", "links", "inbox")]
    known += [f"files:{{l:{sha}}}:{p}" for p in ("link", "pwfail", "pwcheck", "pwfail:203.0.113.9", "pwcheck:x-0a", "pwwait:::/64")]
    known += [f"files:{{all}}:{p}" for p in ("files", "sizes", "bytes", "uploads", "sweep-lock", "gc-cursor")]
    assert all(classify(k) for k in known)
    import re
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[3] / "docs" / "architecture.md").read_text()
    documented = set(re.findall(r"^\| `(files:[^`]+)`", doc, re.M))
    assert len(documented) >= 23
    for pattern in documented:
        sample = (
            pattern.replace("<id>", fid)
            .replace("<username>", "alice")
            .replace("<index>", "3")
            .replace("<version>", "e" * 16)
            .replace("<rand>", "a" * 16)
            .replace("<token>", "b" * 16)
            .replace("<n>", "0")
            .replace("<client>", "d" * 32)
            .replace("<sid>", "c" * 32)
            .replace("<sha256(token)>", sha)
            .replace("<client>", "2001:db8::/64")
        )
        assert classify(sample), pattern
    for bad in (
        "files:{u:}:held",
        "files:{0}:meta",
        f"files:{{{fid}}}:c:x",
        f"files:{{{fid}}}:c:01",
        f"files:{{l:{sha}}}:meta",
        "files:{all}:other",
        "files:meta",
        f"files:{{{fid}}}:share:short",
    ):
        assert classify(bad) is None, bad


# -- as the files service's Redis ACL user (helm/redfile/files/redis/users.acl) -----------------
@pytest.fixture(scope="module")
def acl_server(tmp_path_factory):
    """A private Redis loaded with the deployed ACL file (rendered by the same render-acl.sh, fresh passwords)."""
    import secrets
    from pathlib import Path

    from redfile_dev.redis_server import RedisProcess

    redis_files = Path(__file__).resolve().parents[3] / "helm" / "redfile" / "files" / "redis"
    root = tmp_path_factory.mktemp("acl")
    (root / "pw").mkdir()
    passwords = {u: secrets.token_urlsafe(24) for u in ("redfile-auth", "redfile-files", "redfile-admin", "redfile-probe", "redfile-ops")}
    for user, password in passwords.items():
        (root / "pw" / user).write_text(password)
    done = subprocess.run(
        ["sh", str(redis_files / "render-acl.sh"), str(redis_files / "users.acl"), str(root / "pw"), str(root / "users.acl")],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    server = RedisProcess(root / "data", appendonly=False, extra_args=["--aclfile", str(root / "users.acl")]).start()
    yield server, passwords
    server.stop()


def test_the_checker_runs_as_the_files_acl_user(acl_server):
    import redis

    from redfile_dev.testing import auth_header, settings_overrides, user_token
    from redfile_files import create_app

    from .conftest import Api

    server, passwords = acl_server
    ops = redis.Redis(port=server.port, username="redfile-ops", password=passwords["redfile-ops"])
    ops.flushall()
    ops.acl_log_reset()
    app = create_app(
        **settings_overrides(
            server.url, redis_username="redfile-files", redis_password=passwords["redfile-files"], max_chunk_bytes=64, sweep_interval=0
        )
    )
    alice = auth_header(user_token(app.extensions["redfile"].settings, ops, "alice"))
    api = Api(app.test_client())
    record = api.upload(alice, os.urandom(150))
    make_link(app.test_client(), alice, record["id"])
    api.create(alice, 100, chunk_size=64)
    ops.hset(keys.held("alice"), GHOST, "r:3")  # something for --repair to do
    ops.hincrby(keys.quota("alice"), "reserved", 3)
    checker = checker_of(domain_of(app), settle=0)
    report = checker.check(deep=True, repair=True)
    assert report["ok"], report["problems"]
    assert {r["action"] for r in report["repairs"]} == {"reconcile", "sweep"}
    violations = [e for e in ops.acl_log() if e.get("object") != "client|setinfo"]
    assert violations == [], violations


# -- through the admin API --------------------------------------------------------------------------
def test_the_admin_endpoint_calls_files_with_a_service_token(store, app, serve, redis_url, redis_client):
    from redfile_admin import create_app as create_admin
    from redfile_dev.testing import auth_header, settings_overrides, user_token

    files_url = serve(app)
    admin = create_admin(**settings_overrides(redis_url, files_url=files_url, auth_url="http://127.0.0.1:1", service_timeout=20))
    settings = admin.extensions["redfile"].settings
    root = auth_header(user_token(settings, redis_client, "root", role="admin"))
    client = admin.test_client()
    assert client.get("/admin/consistency", headers=auth_header(user_token(settings, redis_client, "alice"))).status_code == 403
    body = client.get("/admin/consistency?deep=true", headers=root).get_json()
    assert body["ok"] is True and body["deep"] is True and body["summary"]["bytes_verified"] == 355
    assert {row["user"] for row in body["users"]} == {"alice", "bob"}
    redis_client.hset(keys.inbox("bob"), GHOST, "alice")
    body = client.get("/admin/consistency", headers=root).get_json()
    assert body["ok"] is True and body["stale"] == 1
    body = client.get("/admin/consistency?strict=true", headers=root).get_json()
    assert body["ok"] is False and body["problems"][0]["kind"] == "stale_inbox_entry"
    assert client.get("/admin/consistency?deep=maybe", headers=root).status_code == 422


def test_a_commit_interrupted_before_its_chunks_lost_their_ttl_is_pending_then_settled(
    api, alice, domain, checker, redis_client, monkeypatch
):
    from redfile_files.storage.chunks import ChunkStore

    up = api.create(alice, 6, chunk_size=3).json
    api.put(alice, up["id"], 0, b"abc")
    api.put(alice, up["id"], 1, b"def")

    def crash(*_args, **_kwargs):
        raise RuntimeError("crash")

    monkeypatch.setattr(ChunkStore, "settle", crash)
    with pytest.raises(RuntimeError):
        domain.completion.complete("alice", up["id"], name="f", mime_type=None, total_size=6)
    monkeypatch.undo()
    report = checker.check()
    assert report["ok"] and up["id"] in [p["id"] for p in report["pending"]]  # leased: the reconciler's
    expire_now(redis_client, "alice", up["id"])
    domain.storage.lifecycle.sweep_user("alice")
    report = checker.check()
    assert report["ok"] and report["pending"] == []


def test_repair_sets_the_name_and_size_indexes_right(store, checker, redis_client):
    names_before = redis_client.zrange(keys.user_names("alice"), 0, -1)
    redis_client.zrem(keys.user_names("alice"), names_before[0])
    redis_client.zadd(keys.user_names("alice"), {_entry("/x/", "y", store["seed"]["id"]): 0, _entry("/", "ghost", GHOST): 0})
    redis_client.zadd(keys.user_sizes("alice"), {keys.index_id(GHOST): 5})
    redis_client.hset(keys.index_rows("alice"), store["session"]["id"], '[{"f":"/","n":"x"}]')
    before = checker.check()
    assert set(before["counts"]) == {"file_not_indexed", "stale_name_entry", "stale_size_entry", "stale_index_row"}
    after = checker.check(repair=True, strict=True)
    assert after["ok"], after["problems"]
    assert redis_client.zrange(keys.user_names("alice"), 0, -1) == names_before
    assert redis_client.hgetall(keys.index_rows("alice")) == {}


def test_files_stored_before_the_name_index_are_indexed_by_a_repair(store, checker, redis_client, client, alice):
    # as a release before folders left them: no names or sizes entries, no folder in meta
    for user in ("alice", "bob"):
        redis_client.delete(keys.user_names(user), keys.user_sizes(user))
    redis_client.hdel(keys.meta(store["seed"]["id"]), "folder")
    assert client.get("/files", headers=alice, query_string={"sort": "size"}).json["items"] == []
    assert set(checker.check()["counts"]) == {"file_not_indexed"}
    assert checker.check(repair=True)["ok"]
    listed = client.get("/files", headers=alice, query_string={"folder": "/"}).json["items"]
    assert store["seed"]["id"] in {f["id"] for f in listed}
    assert len(client.get("/files", headers=alice, query_string={"sort": "size"}).json["items"]) == len(listed)
