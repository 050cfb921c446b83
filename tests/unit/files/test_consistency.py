"""The consistency checker's pure parts: key families, record rules, and how a due score is read."""

from __future__ import annotations

import pytest

from redfile_files.maintenance import consistency as C
from redfile_files.maintenance.consistency import problems as _problems  # noqa: F401 - C.problems
from redfile_files.maintenance.consistency import walk as W
from redfile_files.maintenance.consistency.run import report
from redfile_files.storage.ledger import LEASE_US

FID = "0123456789abcdef" * 2


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
    assert W.holding(raw) == parsed


def test_part_records():
    good = f"5:0000beef:{'a' * 64}"
    part = W.part_record(good.encode())
    assert part is not None and part.size == 5
    bad = (
        b"",
        b"5",
        f"5:0:{'a' * 63}",
        f"x:0000beef:{'a' * 64}",
        f"5:0000beef:{'g' * 64}",
        f"5:{'a' * 64}:0000beef",
        f"5::0000beef:{'a' * 64}",
    )
    for raw in bad:
        assert W.part_record(raw) is None, raw


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
    assert W.meta_problems(FID, meta) == []
    assert W.meta_problems("f" * 32, meta) == [f"id is {FID}"]
    assert W.meta_problems(FID, {**meta, "size": "-3", "kind": "blob"}) == ["size is not a whole number", "kind is 'blob'"]
    assert W.meta_problems(FID, {**meta, "sha256": ""}) == []  # a file's SHA-256 is computed only when asked for
    assert "owner is missing" in W.meta_problems(FID, {**meta, "owner": ""})


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
    assert W.upload_problems(u) == []
    assert W.upload_problems({**u, "mode": "other"}) == ["mode is 'other'"]
    assert W.upload_problems({**u, "total_size": ""}) == ["a session needs total_size and chunk_size"]
    assert W.upload_problems({**u, "mode": "tus", "total_size": ""}) == []  # a deferred length


@pytest.fixture
def run():
    sources = W.Sources(inspect=None, reader=None, scan_count=10, settle=0.0, clock=lambda: 0.0, sleep=lambda s: None)  # type: ignore[arg-type]
    walk = W.Walk(sources, deep=False, deadline=None)
    walk.now_us = 1_000_000_000_000_000
    return walk


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
    monkeypatch.setattr(W, "MAX_PROBLEMS", 2)
    for i in range(4):
        run.emit("orphan_key", f"files:{{{FID}}}:c:{i}", "x", C.problems.Target("exists", i))
    run.emit("orphan_key", f"files:{{{FID}}}:c:0", "x", C.problems.Target("exists", 0))
    assert run.counts["orphan_key"] == 4 and len(run.problems) == 2
    result = report(run, strict=False, seconds=0.0)
    assert result["problems_truncated"] and not result["ok"] and result["errors"] == 4
