"""One walk's state: what it found, what it will look at again, what the reconciler owns right now."""

from __future__ import annotations

import re
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

from redfile_files.catalogue.reader import Reader
from redfile_files.checksums import Part
from redfile_files.maintenance.consistency.problems import Problem, Target
from redfile_files.records import iso
from redfile_files.storage.inspect import Inspector, as_text
from redfile_files.storage.keys import UploadMode
from redfile_files.storage.ledger import LEASE_US
from redfile_files.storage.lifecycle import US

MAX_PROBLEMS = 1000  # problems listed (all are counted)
MAX_LISTED = 1000  # pending ids and users listed
SKEW_US = 5_000_000  # clock skew allowed over a lease
SUMMARY = ("keys", "files", "file_bytes", "uploads", "users", "shares", "chunks", "transient_keys", "bytes_verified", "pending")
HEX64 = re.compile(r"[0-9a-f]{64}")


@dataclass
class Sources:
    """What a walk reads (the keys, read-only; the bytes for a deep check: ``reader``, counting nothing), and how long
    a problem found waits before it is looked at again (``settle``)."""

    inspect: Inspector
    reader: Reader
    scan_count: int
    settle: float
    clock: Callable[[], float]
    sleep: Callable[[float], None]


class Walk:
    """Problems found (each with what to look at again), pending ids, per-user sums, the summary."""

    def __init__(self, sources: Sources, *, deep: bool, deadline: float | None) -> None:
        self.sources = sources
        self.inspect = sources.inspect
        self.deep = deep
        self.deadline = deadline
        self.started_at = iso(time.time())
        self.complete = True
        self.problems: dict[tuple[str, str, str], tuple[Problem, Target]] = {}
        self.found_at: dict[tuple[str, str, str], float] = {}
        self.counts: Counter = Counter()
        self.summary: Counter = Counter(dict.fromkeys(SUMMARY, 0))
        self.pending: dict[str, dict] = {}
        self.pending_total = 0
        self.pending_ids: set[str] = set()  # ids the reconciler will look at, or that are leased
        self.users: set[str] = set()
        self.user_rows: dict[str, dict] = {}
        self.user_files: dict[str, list[int]] = {}
        self.user_uploads: dict[str, list[int]] = {}
        self.now_us = 0

    def emit(
        self,
        kind: str,
        key: str,
        detail: str,
        target: Target,
        *,
        id: str | None = None,
        user: str | None = None,
        share_id: str | None = None,
        entry: str | None = None,
    ) -> None:
        problem = Problem(kind, key, detail, id, user, share_id, entry)
        found = (problem.kind, problem.key, problem.id or "")
        if found in self.problems:
            return
        self.counts[problem.kind] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems[found] = (problem, target)
            self.found_at[found] = self.sources.clock()

    def mark_pending(self, file_id: str, user: str | None, reason: str, issues: list[str]) -> None:
        """A disagreement the reconciler owns (``due``, ``leased``) or an upload that changed while read (``active``)."""
        self.pending_ids.add(file_id)
        if file_id in self.pending:
            return
        self.pending_total += 1
        if len(self.pending) < MAX_LISTED:
            self.pending[file_id] = {"id": file_id, "user": user, "reason": reason, "issues": issues}

    def out_of_time(self) -> bool:
        if self.deadline is not None and self.sources.clock() > self.deadline:
            self.complete = False
        return not self.complete

    def tick(self) -> None:
        self.now_us = self.inspect.now_us()

    def due_state(self, score, target_us: int | None = None, *, whole_seconds: bool = False) -> str | None:
        """``due`` (the sweep will look at it), ``leased`` (an operation may be in flight) or None (settled)."""
        if score is None:
            return None
        s = int(float(score))
        if s <= self.now_us:
            return "due"
        if s - self.now_us <= LEASE_US + SKEW_US and s != target_us and not (whole_seconds and s % US == 0):
            return "leased"
        return None

    def settle_issues(self, file_id: str, owner: str, issues: list, due, target_us, target: Target, key: str, whole: bool = False) -> None:
        """Disagreements of an id with its owner's slot: pending while the reconciler owns the id, else problems."""
        if not issues:
            return
        state = self.due_state(due, target_us, whole_seconds=whole)
        if state is not None:
            self.mark_pending(file_id, owner, state, [d for _, d in issues])
            return
        for kind, detail in issues:
            self.emit(kind, key, detail, target, id=file_id, user=owner)

    def dead_entry(self, kind: str, key: str, file_id: str, detail: str, target: Target) -> None:
        if file_id in self.pending_ids:
            self.mark_pending(file_id, None, "due", [f"{key}: {file_id} {detail}"])
        else:
            self.emit(kind, key, f"{file_id} {detail}", target, id=file_id)


# -- reading values ----------------------------------------------------------------------------------
def to_int(value) -> int | None:
    text = as_text(value)
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def first(items: list, n: int = 10) -> str:
    return ", ".join(str(i) for i in items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def holding(raw) -> tuple[str, int] | None:
    text = as_text(raw)
    if text is None or len(text) < 3 or text[:2] not in ("r:", "c:") or not text[2:].isdigit():
        return None
    return text[0], int(text[2:])


def expires(pttl) -> bool:
    """PTTL: -1 the key never expires, -2 it does not exist."""
    return isinstance(pttl, int) and pttl >= 0


def part_record(raw) -> Part | None:
    """A part record that is one: a size, 8 hex digits of CRC32C and 64 of BLAKE3."""
    text = as_text(raw)
    if not text:
        return None
    try:
        part = Part.decode(text)
        bytes.fromhex(part.blake3 + part.crc32c)
    except ValueError:
        return None
    return part if len(part.blake3) == 64 and len(part.crc32c) == 8 and part.size >= 0 else None


def session_size(u: dict, index: int) -> int:
    chunk, total, n = int(u["chunk_size"]), int(u["total_size"]), int(u["total_chunks"])
    return total - chunk * (n - 1) if index == n - 1 else chunk


def meta_problems(file_id: str, meta: dict) -> list[str]:
    bad = [f"{f} is missing" for f in ("id", "name", "owner", "created_at", "kind", "size", "total_chunks") if not meta.get(f)]
    for f in ("size", "total_chunks", "chunk_size", "created_ms", "expires_ts"):  # the last three may be empty
        value = to_int(meta[f]) if meta.get(f) else 0
        if value is None or value < 0:
            bad.append(f"{f} is not a whole number")
    if meta.get("id") and meta["id"] != file_id:
        bad.append(f"id is {meta['id']}")
    if meta.get("sha256") and not HEX64.fullmatch(meta["sha256"]):
        bad.append("sha256 is not 64 hex digits")
    if meta.get("kind") and meta["kind"] not in ("file", "text"):
        bad.append(f"kind is {meta['kind']!r}")
    return bad


def upload_problems(u: dict) -> list[str]:
    bad = [f"{f} is missing" for f in ("owner", "mode", "total_chunks", "received_bytes", "deadline") if u.get(f) in (None, "")]
    for f in ("total_chunks", "received_bytes", "deadline", "chunk_size", "total_size"):
        value = to_int(u[f]) if u.get(f) not in (None, "") else 0
        if value is None or value < 0:
            bad.append(f"{f} is not a whole number")
    if u.get("mode") and u["mode"] not in UploadMode.__members__.values():
        bad.append(f"mode is {u['mode']!r}")
    if u.get("mode") == UploadMode.SESSION and (to_int(u.get("chunk_size")) in (None, 0) or to_int(u.get("total_size")) is None):
        bad.append("a session needs total_size and chunk_size")
    return bad
