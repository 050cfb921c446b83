"""Issue 6 on the files side, against a real Redis: each product metric is counted where it happens,
a user's own deletes are audited, and GET /internal/stats counts files, bytes and uploads in
progress -- everyone's and one owner's -- through deletes, aborts, expiry and the reconciler.

The metrics are read from the test app's own Prometheus registry.
"""

import base64
import hashlib
import time

import pytest

from redfile_dev.testing import auth_header, user_token
from redfile_files.domain import files_domain
from redfile_files.maintenance.sweeper import Sweeper
from redfile_files.storage import files as storage
from redfile_files.storage import keys
from redfile_files.storage import ledger as ledger
from redfile_files.storage.records import IndexRow

from .conftest import chunk_at, expire_now


class Reading:
    """The app's files metrics: ``m.value(name, **labels)``; ``m.delta()`` since the last call."""

    def __init__(self, app) -> None:
        self.registry = app.extensions["redfile_metrics"].registry
        self.last = self.snapshot()

    def value(self, name: str, **labels) -> float:
        return self.registry.get_sample_value(name, {"service": "files", **labels}) or 0

    def snapshot(self) -> dict:
        out = {}
        for family in self.registry.collect():
            if family.name.startswith("redfile_files_"):
                for s in family.samples:
                    label = ",".join(f"{v}" for k, v in sorted(s.labels.items()) if k != "service")
                    out[s.name.removeprefix("redfile_files_") + (f"[{label}]" if label else "")] = s.value
        return out

    def delta(self) -> dict:
        """What changed since the last call (counters only: the gauge is read with ``value``)."""
        now = self.snapshot()
        changed = {k: v - self.last.get(k, 0) for k, v in now.items() if v != self.last.get(k, 0) and not k.startswith("active_uploads")}
        self.last = now
        return changed


@pytest.fixture
def m(app):
    return Reading(app)


def stats(client, internal, owner=None):
    resp = client.get("/internal/stats", headers=internal, query_string={"owner": owner} if owner else {})
    assert resp.status_code == 200, resp.json
    return resp.json


def zeros():
    return {"files": 0, "bytes_stored": 0, "active_uploads": 0}


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# -- metrics -------------------------------------------------------------------------------
def test_a_session_counts_start_new_chunks_and_their_bytes_and_completion(api, client, alice, m):
    up = api.create(alice, 100, chunk_size=64).json
    assert m.delta() == {"upload_events_total[started]": 1}
    assert api.put(alice, up["id"], 1, b"y" * 36).status_code == 201
    assert m.delta() == {"chunks_stored_total": 1, "uploaded_bytes_total": 36}
    assert api.put(alice, up["id"], 1, b"y" * 36).status_code == 200  # an identical retry
    assert m.delta() == {}
    assert api.put(alice, up["id"], 0, b"x" * 64).status_code == 201
    assert m.delta() == {"chunks_stored_total": 1, "uploaded_bytes_total": 64}
    assert client.post(f"/uploads/{up['id']}/complete", headers=alice).status_code == 201
    assert m.delta() == {"upload_events_total[completed]": 1}


def test_a_seed_upload_counts_its_first_chunk_as_a_start(api, alice, m):
    first = api.chunk(alice, 0, 2, b"ab")
    assert first.status_code == 201
    assert m.delta() == {"upload_events_total[started]": 1, "chunks_stored_total": 1, "uploaded_bytes_total": 2}
    fid = first.json["file_id"]
    assert api.chunk(alice, 1, 2, b"cde", fid).status_code == 200
    assert m.delta() == {"chunks_stored_total": 1, "uploaded_bytes_total": 3}
    assert api.chunk(alice, 1, 2, b"cde", fid).status_code == 200
    assert m.delta() == {}
    assert api.complete(alice, fid, 5).status_code == 201
    assert m.delta() == {"upload_events_total[completed]": 1}


def test_one_request_files_and_texts_count_their_bytes_once_and_no_upload_events(client, alice, m):
    data = b"z" * 150  # three internal chunks of 64: still one upload of 150 bytes
    assert client.post("/files", headers=alice, json={"name": "a.bin", "data": base64.b64encode(data).decode()}).status_code == 201
    assert m.delta() == {"uploaded_bytes_total": 150}
    assert client.post("/texts", headers=alice, json={"content": "héllo"}).status_code == 201
    assert m.delta() == {"uploaded_bytes_total": 6}


def test_aborts_count_one_each_also_when_the_owner_goes(api, client, alice, internal, m):
    up = api.create(alice, 10).json
    assert client.delete(f"/uploads/{up['id']}", headers=alice).status_code == 204
    api.create(alice, 10)
    api.chunk(alice, 0, 2, b"seed")
    api.session(alice, b"a file", chunk=64)
    m.delta()
    assert client.delete("/internal/owners/alice/files", headers=internal).json == {"deleted": 1, "shares_removed": 0}
    assert m.delta() == {"upload_events_total[aborted]": 2}
    assert m.value("redfile_files_upload_events_total", event="aborted") == 3


def test_the_reconciler_counts_expired_uploads_and_the_gauge_counts_uploads_in_progress(api, alice, domain, redis_client, m):
    expired = api.create(alice, 100).json["id"]
    api.put(alice, expired, 0, b"x" * 64)
    api.create(alice, 10)
    for key in redis_client.keys(f"files:{{{expired}}}:*"):
        redis_client.pexpire(key, 1)  # its deadline passed
    expire_now(redis_client, "alice", expired)
    time.sleep(0.01)
    m.delta()
    sweeper = Sweeper(domain.storage.lifecycle, domain.storage.ledger, interval=60, metrics=domain.sweeper.metrics)
    assert sweeper.run_once() == 1
    assert m.delta() == {"upload_events_total[expired]": 1}
    assert m.value("redfile_files_active_uploads") == 1
    api.create(alice, 10)
    assert sweeper.run_once() == 0  # another round within the interval: no lock, still a count
    assert m.value("redfile_files_active_uploads") == 2


def test_the_gauge_is_set_by_the_global_stats(api, client, alice, internal, m):
    api.create(alice, 10)
    api.create(alice, 10)
    assert stats(client, internal)["active_uploads"] == 2
    assert m.value("redfile_files_active_uploads") == 2


def test_client_checksum_mismatches_are_counted(api, client, alice, m):
    up = api.create(alice, 4, chunk_size=4, sha256=sha(b"abcd")).json
    m.delta()
    assert api.put(alice, up["id"], 0, b"abcd", **{"X-Checksum-SHA256": sha(b"other")}).status_code == 400
    assert m.delta() == {"checksum_failures_total[client]": 1}
    assert api.chunk(alice, 0, 1, b"abcd", sha256=sha(b"other")).status_code == 400
    assert m.delta() == {"checksum_failures_total[client]": 1}
    other = api.create(alice, 4, chunk_size=4, sha256=sha(b"abce")).json  # declares another file's digest
    api.put(alice, other["id"], 0, b"abcd")
    m.delta()
    done = client.post(f"/uploads/{other['id']}/complete", headers=alice)
    assert done.status_code == 400 and done.json["error"]["code"] == "checksum_mismatch"
    assert m.delta() == {"checksum_failures_total[client]": 1}


def test_stored_data_that_fails_its_check_is_counted_at_completion_and_on_download(api, client, alice, redis_client, m):
    up = api.create(alice, 8, chunk_size=4).json
    api.put(alice, up["id"], 0, b"abcd")
    api.put(alice, up["id"], 1, b"efgh")
    redis_client.set(chunk_at(redis_client, up["id"], 1), b"ef")  # truncated in storage
    m.delta()
    done = client.post(f"/uploads/{up['id']}/complete", headers=alice)
    assert done.status_code == 500 and done.json["error"]["code"] == "stored_data_corrupt"
    assert m.delta() == {"checksum_failures_total[storage]": 1}

    meta = api.session(alice, b"0123456789", chunk=64)
    redis_client.set(chunk_at(redis_client, meta["id"], 0), b"012345678X")
    m.delta()
    resp = client.get(f"/files/{meta['id']}", headers=alice)
    assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt"
    assert m.delta() == {"checksum_failures_total[storage]": 1}


def test_quota_refusals_are_counted(make_app, settings, redis_client):
    app = make_app(default_quota_bytes=100)
    client, m = app.test_client(), Reading(app)
    alice = auth_header(user_token(settings, redis_client, "alice"))
    assert client.post("/uploads", headers=alice, json={"name": "a", "total_size": 101}).json["error"]["code"] == "quota_exceeded"
    body = {"chunk_index": 0, "total_chunks": 2, "chunk_data": base64.b64encode(b"x" * 60).decode()}
    fid = client.post("/upload_chunk", headers=alice, json=body).json["file_id"]
    over = client.post("/upload_chunk", headers=alice, json={**body, "chunk_index": 1, "file_id": fid})
    assert over.json["error"]["code"] == "quota_exceeded"
    assert client.post("/texts", headers=alice, json={"content": "y" * 41}).json["error"]["code"] == "quota_exceeded"
    with app.app_context():
        files_domain().catalogue.set_quota("alice", None, 50)
    assert client.post("/uploads", headers=alice, json={"name": "a", "total_size": 51}).json["error"]["code"] == "payload_too_large"
    assert m.value("redfile_files_quota_rejections_total") == 3  # the largest file is no quota


@pytest.mark.parametrize("read_piece", [storage.READ_PIECE, 7], ids=["whole chunks", "7-byte pieces"])
def test_downloads_count_the_bytes_sent(api, client, alice, m, monkeypatch, read_piece):
    monkeypatch.setattr(storage, "READ_PIECE", read_piece)  # a chunk read back (and sent) in several pieces, or one
    meta = api.session(alice, bytes(range(200)), chunk=64)
    m.delta()
    assert client.get(f"/files/{meta['id']}", headers=alice).data == bytes(range(200))
    assert m.delta() == {"downloaded_bytes_total": 200}
    part = client.get(f"/files/{meta['id']}", headers={**alice, "Range": "bytes=60-69"})
    assert part.status_code == 206 and part.data == bytes(range(60, 70))  # across two chunks
    assert m.delta() == {"downloaded_bytes_total": 10}
    assert client.head(f"/files/{meta['id']}", headers=alice).status_code == 200
    assert m.delta() == {}


# -- audit ---------------------------------------------------------------------------------
def audit_entries(r) -> list[dict]:
    return [{k.decode(): v.decode() for k, v in fields.items()} for _, fields in r.xrange("rf:audit")]


def test_a_users_own_delete_is_audited_and_a_service_delete_is_not(api, client, alice, admin, internal, redis_client):
    mine = api.session(alice, b"12345", chunk=64)
    assert client.delete(f"/files/{mine['id']}", headers=alice).status_code == 204
    by_admin = api.session(alice, b"123", chunk=64)
    assert client.delete(f"/files/{by_admin['id']}", headers=admin).status_code == 204
    by_service = api.session(alice, b"1", chunk=64)
    assert client.delete(f"/internal/files/{by_service['id']}", headers=internal).status_code == 204
    assert client.delete(f"/files/{'0' * 32}", headers=alice).status_code == 404
    entries = audit_entries(redis_client)
    assert [(e["action"], e["service"], e["actor"], e["user"], e["target"], e["outcome"]) for e in entries] == [
        ("file.deleted", "files", "alice", "alice", mine["id"], "success"),
        ("file.deleted", "files", "root", "alice", by_admin["id"], "success"),
    ]
    assert [e["details"] for e in entries] == ['{"kind":"file","size":5}', '{"kind":"file","size":3}']
    assert all(e["request_id"] for e in entries)


# -- GET /internal/stats -------------------------------------------------------------------
def test_stats_answer_service_tokens_only(client, alice):
    assert client.get("/internal/stats", headers=alice).status_code == 401
    assert client.get("/internal/stats").status_code == 401


def test_stats_of_nothing_and_of_a_stranger_are_zeros(client, internal, redis_client):
    assert stats(client, internal) == zeros()
    assert stats(client, internal, "nobody") == zeros()
    assert redis_client.keys("files:*") == []  # asking created nothing


def test_a_bad_owner_is_a_validation_error(client, internal):
    for bad in ("a{b}", "x" * 129, "tab\there"):
        resp = client.get("/internal/stats", headers=internal, query_string={"owner": bad})
        assert resp.status_code == 422 and resp.json["error"]["code"] == "validation_error", bad


def test_stats_count_files_bytes_and_uploads_per_owner_and_overall(api, client, alice, bob, internal):
    a1 = api.session(alice, b"x" * 100, chunk=64)
    api.upload(alice, b"y" * 30)  # the seed's API
    assert client.post("/texts", headers=alice, json={"content": "hi"}).status_code == 201
    api.create(alice, 1000)  # in progress
    seed = api.chunk(alice, 0, 3, b"zz").json["file_id"]  # in progress
    api.session(bob, b"b" * 7, chunk=64)
    assert stats(client, internal, "alice") == {"files": 3, "bytes_stored": 132, "active_uploads": 2}
    assert stats(client, internal, "bob") == {"files": 1, "bytes_stored": 7, "active_uploads": 0}
    assert stats(client, internal) == {"files": 4, "bytes_stored": 139, "active_uploads": 2}

    assert client.delete(f"/files/{a1['id']}", headers=alice).status_code == 204
    assert client.delete(f"/uploads/{seed}", headers=alice).status_code == 204
    assert stats(client, internal, "alice") == {"files": 2, "bytes_stored": 32, "active_uploads": 1}
    assert stats(client, internal) == {"files": 3, "bytes_stored": 39, "active_uploads": 1}

    assert client.delete("/internal/owners/alice/files", headers=internal).json == {"deleted": 2, "shares_removed": 0}
    assert stats(client, internal, "alice") == zeros()
    assert stats(client, internal) == {"files": 1, "bytes_stored": 7, "active_uploads": 0}


def test_stats_after_expiry_and_the_reconciler(api, client, alice, internal, redis_client):
    kept = api.session(alice, b"kept", chunk=64)
    short = api.session(alice, b"short-lived", chunk=64, expires_in=2)
    up = api.create(alice, 100).json
    assert stats(client, internal) == {"files": 2, "bytes_stored": 15, "active_uploads": 1}
    for key in redis_client.keys(f"files:{{{up['id']}}}:*"):
        redis_client.pexpire(key, 1)  # the upload's deadline passed
    expire_now(redis_client, "alice", up["id"])
    deadline = time.time() + 8
    while time.time() < deadline and redis_client.exists(keys.meta(short["id"])):
        time.sleep(0.1)  # the file's own expiry
    assert not redis_client.exists(keys.meta(short["id"]), keys.upload(up["id"]))
    # everyone's counts are as of the last sweep; the owner's sweep their due entries first
    assert stats(client, internal) == {"files": 2, "bytes_stored": 15, "active_uploads": 1}
    assert stats(client, internal, "alice") == {"files": 1, "bytes_stored": 4, "active_uploads": 0}
    assert stats(client, internal) == {"files": 1, "bytes_stored": 4, "active_uploads": 0}
    assert [f["id"] for f in client.get("/files", headers=alice).json["items"]] == [kept["id"]]


def test_the_background_sweep_brings_everyones_counts_up_to_date(api, client, alice, internal, domain, redis_client):
    api.session(alice, b"short-lived", chunk=64, expires_in=1)
    time.sleep(2.1)  # expires_in rounds up to a whole second: gone within 2 s
    assert Sweeper(domain.storage.lifecycle, domain.storage.ledger, interval=60).run_once() == 1
    assert stats(client, internal) == zeros()
    assert [k for k in redis_client.keys("files:*") if k not in (keys.SWEEP_LOCK.encode(), keys.GC_CURSOR.encode())] == []


def test_crash_leftovers_over_count_until_the_reconciler_repairs_them(api, client, alice, internal, domain, redis_client):
    # a completion that charged and indexed, then died before its commit
    up = api.create(alice, 6, chunk_size=3).json
    api.put(alice, up["id"], 0, b"abc")
    api.put(alice, up["id"], 1, b"def")
    domain.storage.ledger.charge("alice", up["id"], 6, 123, IndexRow("/", "file.bin"))
    domain.storage.ledger.index_global(up["id"], 123, 6)
    assert stats(client, internal) == {"files": 1, "bytes_stored": 6, "active_uploads": 1}  # over, never under
    expire_now(redis_client, "alice", up["id"])
    assert stats(client, internal, "alice") == {"files": 0, "bytes_stored": 0, "active_uploads": 1}
    assert stats(client, internal) == {"files": 0, "bytes_stored": 0, "active_uploads": 1}
    assert client.post(f"/uploads/{up['id']}/complete", headers=alice).status_code == 201
    assert stats(client, internal) == {"files": 1, "bytes_stored": 6, "active_uploads": 0}

    # a create that reserved and counted its upload, then died before creating it
    domain.storage.ledger.reserve("alice", "e" * 32, 50, new=True, lease=True)
    domain.storage.ledger.upload_started("e" * 32, 1)
    assert stats(client, internal)["active_uploads"] == 1
    expire_now(redis_client, "alice", "e" * 32)
    assert stats(client, internal, "alice") == {"files": 1, "bytes_stored": 6, "active_uploads": 0}
    assert stats(client, internal)["active_uploads"] == 0


def test_the_sweeps_walk_drops_dead_entries(api, client, internal, alice, domain, redis_client):
    kept = api.session(alice, b"kept!", chunk=64)
    domain.storage.ledger.index_global("d" * 32, 1, 40)  # left by a crash before a commit that never came
    assert stats(client, internal) == {"files": 2, "bytes_stored": 45, "active_uploads": 0}
    Sweeper(domain.storage.lifecycle, domain.storage.ledger, interval=60).run_once()
    assert stats(client, internal) == {"files": 1, "bytes_stored": 5, "active_uploads": 0}
    assert redis_client.hgetall(keys.ALL_SIZES) == {kept["id"].encode(): b"5"}


def test_stats_are_in_the_openapi_document(client):
    spec = client.get("/internal/openapi.json").json  # the internal document: no client reaches /internal/
    assert "/internal/stats" not in client.get("/files/openapi.json").json["paths"]
    op = spec["paths"]["/internal/stats"]["get"]
    assert [p["name"] for p in op["parameters"]] == ["owner"]
    schema = op["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    assert set(schema["properties"]) == {"files", "bytes_stored", "active_uploads"}
    assert op["security"] == [{"ServiceToken": []}]
