"""The consistency checker's pure parts: key families, record rules, and how a due score is read."""

from __future__ import annotations

import pytest

from redfile_files.maintenance import consistency as C
from redfile_files.storage.ledger import LEASE_US

FID = "0123456789abcdef" * 2


@pytest.mark.parametrize(
    "key, family",
    [
        (f"files:{{{FID}}}:meta", ("id", FID, "meta", "hash", "")),
        (f"files:{{{FID}}}:c:12", ("id", FID, "chunk", "string", "12")),
        (f"files:{{{FID}}}:in:3:{'ab' * 8}", ("id", FID, "staging", "string", "3")),
        (f"files:{{{FID}}}:s:{'cd' * 8}:7", ("id", FID, "staging", "string", "7")),
        (f"files:{{{FID}}}:share:{'e' * 32}", ("id", FID, "share", "hash", "e" * 32)),
        ("files:{u:ann.b@x}:held", ("user", "ann.b@x", "held", "hash", "")),
        ("files:{u:a:b}:due", ("user", "a:b", "due", "zset", "")),
        (f"files:{{l:{'9' * 64}}}:pwfail", ("link", "9" * 64, "pwfail", "string", "")),
        (f"files:{{l:{'9' * 64}}}:pwcheck", ("link", "9" * 64, "pwcheck", "zset", "")),
        ("files:{all}:sweep-lock", ("all", "all", "sweep-lock", "string", "")),
    ],
)
def test_known_families(key, family):
    fam = C.classify(key)
    assert (fam.space, fam.tag, fam.part, fam.type, fam.arg) == family


@pytest.mark.parametrize(
    "key",
    [
        "files:meta",
        "files:{}:meta",
        f"files:{{{FID.upper()}}}:meta",
        f"files:{{{FID}}}:thumb",
        f"files:{{{FID}}}:c:",
        f"files:{{{FID}}}:c:-1",
        f"files:{{{FID}}}:c:007",
        f"files:{{{FID}}}:in:3:short",
        "files:{u:}:held",
        "files:{u:ann}:notes",
        f"files:{{l:{'9' * 63}}}:link",
        "files:{all}:locks",
        "files:{ALL}:files",
        f"files:{{{FID}}}:meta:extra",
        "other:{all}:files",
    ],
)
def test_anything_else_is_unknown(key):
    assert C.classify(key) is None


def test_every_kind_has_a_severity_and_a_meaning():
    assert set(C.KINDS) >= {
        "unknown_key",
        "chunk_missing",
        "chunk_size_wrong",
        "usage_drift",
        "orphan_key",
        "orphan_share",
        "index_without_charge",
        "dangling_index_entry",
        "data_corrupt",
        "stale_link_entry",
    }
    assert {sev for sev, _ in C.KINDS.values()} == {C.ERROR, C.STALE}
    assert all(len(meaning) > 20 for _, meaning in C.KINDS.values())


@pytest.mark.parametrize(
    "raw, parsed", [(b"c:10", ("c", 10)), (b"r:0", ("r", 0)), (b"x:1", None), (b"c:", None), (b"c:-1", None), (None, None)]
)
def test_holdings(raw, parsed):
    assert C._holding(raw) == parsed


def test_part_records():
    good = f"5:{'a' * 64}:0000beef"
    assert C._part(good.encode()).size == 5
    for bad in (b"", b"5", f"5:{'a' * 63}:0".encode(), f"x:{'a' * 64}:0".encode(), f"5:{'g' * 64}:0".encode()):
        assert C._part(bad) is None, bad


def test_a_meta_record_must_be_complete():
    meta = {
        "id": FID,
        "name": "a",
        "owner": "ann",
        "created_at": "t",
        "sha256": "a" * 64,
        "kind": "file",
        "size": "0",
        "total_chunks": "0",
        "chunk_size": "",
        "expires_ts": "0",
    }
    assert C._meta_problems(FID, meta) == []
    assert C._meta_problems("f" * 32, meta) == [f"id is {FID}"]
    assert C._meta_problems(FID, {**meta, "size": "-3", "kind": "blob"}) == ["size is not a whole number", "kind is 'blob'"]
    assert C._meta_problems(FID, {**meta, "sha256": ""}) == []  # a file's SHA-256 is computed only when asked for
    assert "owner is missing" in C._meta_problems(FID, {**meta, "owner": ""})


def test_an_upload_record_must_be_complete():
    u = {
        "owner": "ann",
        "mode": "session",
        "total_chunks": "2",
        "received_bytes": "0",
        "deadline": "9",
        "chunk_size": "4",
        "total_size": "8",
    }
    assert C._upload_problems(u) == []
    assert C._upload_problems({**u, "mode": "other"}) == ["mode is 'other'"]
    assert C._upload_problems({**u, "total_size": ""}) == ["a session needs total_size and chunk_size"]
    assert C._upload_problems({**u, "mode": "tus", "total_size": ""}) == []  # a deferred length


class _Checker:
    redis = None


@pytest.fixture
def run():
    r = C._Run(_Checker(), deep=False, deadline=None)
    r.now_us = 1_000_000_000_000_000
    return r


def test_how_a_due_score_is_read(run):
    now = run.now_us
    assert run.due_state(None) is None
    assert run.due_state(now - 1) == "due"  # the sweep will look at it
    assert run.due_state(now + LEASE_US) == "leased"  # an operation's lease
    assert run.due_state(now + 10 * LEASE_US) is None  # a deadline or an expiry: settled
    assert run.due_state(now + 7_000_000, target_us=now + 7_000_000) is None  # the expiry it must have
    assert run.due_state(now + 7_000_000, whole_seconds=True) is None  # an upload's deadline (whole seconds)
    assert run.due_state(now + 7_000_001, whole_seconds=True) == "leased"


def test_problems_are_counted_once_and_listed_up_to_the_limit(run, monkeypatch):
    monkeypatch.setattr(C, "MAX_PROBLEMS", 2)
    run.c.clock = lambda: 0.0
    for i in range(4):
        run.emit("orphan_key", f"files:{{{FID}}}:c:{i}", "x", ("exists", i))
    run.emit("orphan_key", f"files:{{{FID}}}:c:0", "x", ("exists", 0))
    assert run.counts["orphan_key"] == 4 and len(run.problems) == 2
    report = run.report(strict=False, seconds=0.0)
    assert report["problems_truncated"] and not report["ok"] and report["errors"] == 4
