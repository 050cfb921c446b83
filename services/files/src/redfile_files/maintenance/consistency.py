"""The consistency checker: does the files service's Redis data agree with itself?

Run by operators (``redfile-check``, or ``python -m redfile_files.consistency``,
in any files container or pod; and ``GET /admin/consistency`` through the admin
service).  It reads every ``files:*`` key once (SCAN with COUNT), by key family:

===================================  =====================================================
family                               must be
===================================  =====================================================
``{<id>}:meta``                      a complete file record whose chunk table has
                                     ``total_chunks`` parts adding up to ``size`` (and the
                                     composite and CRC32C), every chunk stored with its
                                     part's size (+28 sealed), nothing of a permanent file
                                     expiring; charged to its owner (``held`` c:<size>),
                                     in their index and the global index with its size,
                                     due at its expiry.  ``deep``: its bytes, read and
                                     opened as a download reads them, hash to its CRC32C,
                                     composite (and SHA-256 when it has one)
``{<id>}:upload``                    a complete upload record whose stored chunks add up
                                     to ``received_bytes`` and have their sizes; every key
                                     expiring; reserved (``held`` r:>= what the reconciler
                                     keeps), due, counted in ``{all}:uploads``, unindexed
``{<id>}:parts``, ``:c:<i>``         of a file or upload (a chunk: in its chunk table)
``{<id>}:in:…``, ``:s:…``            staging keys: transient while they have their TTL
``{<id>}:share:<sid>``               a link of an existing file, listed in its ``shares``,
                                     found by its token's ``{l:…}:link`` and in its
                                     owner's ``links``
``{<id>}:shares``, ``:recipients``   of an existing file; each share exists, each
                                     recipient has the file in their ``inbox``
``{l:<sha>}:link``                   the lookup of an existing share
``{l:<sha>}:pwfail``, ``:pwcheck``   a link's password failures / checks in flight: with a TTL
``{u:<user>}:quota``, ``:held``      ``used`` = the sum of the charges, ``reserved`` = the
                                     sum of the reservations; each holding of a live id
``{u:<user>}:files``, ``:due``       indexed ids are charged; due ids are held or alive
``{u:<user>}:links``, ``:inbox``     entries of existing shares (else *stale*, below)
``{all}:files|sizes|bytes|uploads``  entries of live ids, sizes of indexed ids, bytes =
                                     their sum
``{all}:sweep-lock``, ``:gc-cursor`` the sweep's lock expires
===================================  =====================================================

Any other key under ``files:`` (or one of the wrong type) is a problem: the
checker fails closed on a family it does not know.

**Live traffic.**  The checker uses the reconciler's notions (see ``reconcile``):
when the user's slot disagrees with the file slot for an id whose due time has
passed (*due*: the next sweep repairs it) or whose due score is a lease
(*leased*: an operation is in flight), the id is reported as *pending*, not as a
problem.  Staging keys live by their TTL.  Every problem found is looked at again
after ``settle`` seconds and reported only if it is still there (a share outlives
its file for the moment a delete takes to purge it; a link's lookup is written
just before its share), and an upload that changed while it was read is pending.

**Severity.**  ``error``: an inconsistency.  ``stale``: an entry of a user's
``links`` or ``inbox`` index whose share or file is gone -- readers drop those
when they list (an expired shared file leaves them until then); they fail the
check only with ``strict``.

**Memory** stays bounded: keys come in SCAN batches, hashes and sorted sets in
HSCAN/ZSCAN batches, chunk tables by index ranges, and ``deep`` holds one chunk
at a time; what is kept across the walk is per user (sums) and the ids in flight.
A ``max_seconds`` budget stops the walk early (the report then says
``complete: false``, and is not ``ok``).

**Repair** (off unless asked) does only what the service already does to heal
itself, and then checks again: ids whose user slot disagrees are made due
(compare-and-set on the due score seen) and swept by the reconciler; global index
and in-progress entries of ids that are gone are dropped (the sweep's walk);
stale ``links``/``inbox`` entries are dropped (what listing does); the shares of a
missing file are purged (what a delete does).  Everything else (a missing or
corrupt chunk, a drifted counter, an orphan chunk or lookup key) is reported for
a person to look at.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import asdict, dataclass
from itertools import islice

import redis

from redfile_common.errors import ApiError
from redfile_files.checksums import FileDigest, Part, composite, composite_sha256, file_crc32c, part_of
from redfile_files.crypto import SEAL_OVERHEAD, ChunkCorrupt
from redfile_files.maintenance.reconcile import US
from redfile_files.records import FileRecord, iso
from redfile_files.storage import ledger as L
from redfile_files.storage.files import ChunkMissing, chunk_key, meta_key, parts_key, upload_key
from redfile_files.storage.shares import ShareStore, inbox_key, link_key, links_key, recipients_key, share_key, shares_key

SCAN_COUNT = 1000
BATCH = 500  # keys or ids looked up per pipeline
CHUNK_BATCH = 512  # chunks of one file looked up per pipeline
ATOMIC_LIMIT = 5000  # hashes up to this size are read in one MULTI (an exact snapshot)
MAX_PROBLEMS = 1000  # problems listed (all are counted)
MAX_LISTED = 1000  # pending ids and users listed
SKEW_US = 5_000_000  # clock skew allowed over a lease
ERROR, STALE = "error", "stale"
SUMMARY = ("keys", "files", "file_bytes", "uploads", "users", "shares", "chunks", "transient_keys", "bytes_verified", "pending")

# kind -> (severity, what it means); docs/operations.md lists them too.
KINDS = {
    "unknown_key": (ERROR, "a files:* key of no known family"),
    "wrong_type": (ERROR, "a key of a known family holds another Redis type"),
    "file_record_incomplete": (ERROR, "a file's meta lacks a field or holds a bad value"),
    "file_and_upload": (ERROR, "an id is a file and an upload at once"),
    "chunk_table_mismatch": (ERROR, "a chunk table has parts missing, extra or unreadable"),
    "chunk_missing": (ERROR, "a chunk listed in the chunk table is not stored"),
    "chunk_size_wrong": (ERROR, "a stored chunk's length is not its part's size (+28 sealed), or the chunk size rule is broken"),
    "size_mismatch": (ERROR, "the parts do not add up to the file's size (an upload's received_bytes)"),
    "checksum_record_mismatch": (ERROR, "the composite checksum does not match the chunk table"),
    "data_corrupt": (ERROR, "deep: the stored bytes fail their checks or do not match the file's CRC32C, composite or SHA-256"),
    "key_expiry_wrong": (ERROR, "a key of a permanent file expires, or one of an upload does not"),
    "file_not_charged": (ERROR, "a file is not charged to its owner with its size"),
    "file_not_indexed": (ERROR, "a file is missing from its owner's index or the global index, or its global size differs"),
    "due_missing": (ERROR, "an upload or expiring file has no due entry: the sweep would never release it"),
    "upload_record_incomplete": (ERROR, "an upload's record lacks a field or holds a bad value"),
    "upload_not_reserved": (ERROR, "an upload's owner holds less than the reconciler keeps reserved for it"),
    "upload_indexed": (ERROR, "an upload is in a file index"),
    "upload_not_counted": (ERROR, "an upload is missing from files:{all}:uploads"),
    "orphan_key": (ERROR, "a key of an id that is neither file nor upload, a chunk outside its table, or a staging key without TTL"),
    "orphan_share": (ERROR, "a share (or a file's share or recipient list) of a file that does not exist"),
    "share_record_invalid": (ERROR, "a share's record does not match its key or its file"),
    "share_not_listed": (ERROR, "a share is not in its file's shares list (a delete would not remove it)"),
    "share_link_missing": (ERROR, "a share's token lookup is missing or points elsewhere"),
    "share_not_in_owner_links": (ERROR, "a share is not in its owner's links (they cannot see or revoke it)"),
    "recipient_not_in_inbox": (ERROR, "a recipient of a file does not have it in their inbox"),
    "dangling_share_entry": (ERROR, "a file's shares list names a share that does not exist"),
    "orphan_link": (ERROR, "a token lookup of a share that does not exist, or a password counter without TTL"),
    "usage_drift": (ERROR, "a user's quota.used is not the sum of their charges"),
    "reservation_drift": (ERROR, "a user's quota.reserved is not the sum of their reservations"),
    "holding_invalid": (ERROR, "a holding is not r:<n> or c:<n>"),
    "dangling_holding": (ERROR, "a user holds bytes for an id that is neither their file nor their upload"),
    "index_without_charge": (ERROR, "a user's index lists an id they are not charged for"),
    "orphan_due": (ERROR, "a due entry of an id that the user neither holds nor owns"),
    "dangling_index_entry": (ERROR, "the global index lists an id that is not a file"),
    "size_without_index": (ERROR, "files:{all}:sizes holds an id that is not indexed"),
    "global_bytes_drift": (ERROR, "files:{all}:bytes is not the sum of files:{all}:sizes"),
    "upload_count_stale": (ERROR, "files:{all}:uploads lists an id that is no upload in progress"),
    "bad_value": (ERROR, "a counter, lock or cursor holds a bad value or never expires"),
    "stale_link_entry": (STALE, "a user's links index names a share that is gone (dropped when they list)"),
    "stale_inbox_entry": (STALE, "a user's inbox names a file no longer shared with them (dropped when they list)"),
}

_TAG = re.compile(r"files:\{([^{}]*)\}:(.+)", re.S)
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_ID_FIXED = {"meta": "hash", "upload": "hash", "parts": "hash", "shares": "hash", "recipients": "hash"}
_ID_PATTERNS = (
    (re.compile(r"c:(0|[1-9][0-9]*)"), "chunk", "string"),
    (re.compile(r"in:(0|[1-9][0-9]*):[0-9a-f]{16}"), "staging", "string"),
    (re.compile(r"s:[0-9a-f]{16}:([0-9]+)"), "staging", "string"),
    (re.compile(r"share:([0-9a-f]{32})"), "share", "hash"),
)
_USER = {"quota": "hash", "held": "hash", "files": "zset", "due": "zset", "links": "hash", "inbox": "hash"}
_LINK = {"link": "string", "pwfail": "string", "pwcheck": "zset"}
_ALL = {"files": "zset", "sizes": "hash", "bytes": "string", "uploads": "zset", "sweep-lock": "string", "gc-cursor": "string"}
_MODES = ("session", "seed", "tus")


@dataclass(frozen=True)
class Family:
    space: str  # id | user | link | all
    tag: str  # the id, the username, the token's hash, "all"
    part: str  # meta, chunk, staging, share, quota, ...
    type: str  # the Redis type it must have
    arg: str = ""  # a chunk's index, a share's id


def classify(key: str) -> Family | None:
    """The family of a ``files:*`` key, or None when it is of no known family."""
    m = _TAG.fullmatch(key)
    if not m:
        return None
    tag, rest = m.groups()
    if _HEX32.fullmatch(tag):
        if rest in _ID_FIXED:
            return Family("id", tag, rest, _ID_FIXED[rest])
        for pattern, part, kind in _ID_PATTERNS:
            pm = pattern.fullmatch(rest)
            if pm:
                return Family("id", tag, part, kind, pm.group(1))
        return None
    if tag.startswith("u:") and len(tag) > 2 and rest in _USER:
        return Family("user", tag[2:], rest, _USER[rest])
    if tag.startswith("l:") and _HEX64.fullmatch(tag[2:]) and rest in _LINK:
        return Family("link", tag[2:], rest, _LINK[rest])
    if tag == "all" and rest in _ALL:
        return Family("all", "all", rest, _ALL[rest])
    return None


@dataclass
class Problem:
    kind: str
    key: str
    detail: str
    id: str | None = None
    user: str | None = None

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]


def _s(value) -> str | None:
    if value is None:
        return None
    if isinstance(value, bytes):
        try:
            return value.decode()
        except UnicodeDecodeError:
            return None
    return str(value)


def _int(value) -> int | None:
    text = _s(value)
    try:
        return int(text) if text not in (None, "") else None
    except ValueError:
        return None


def _hash(raw) -> dict[str, str]:
    return {_s(k) or "": _s(v) or "" for k, v in raw.items()} if isinstance(raw, dict) else {}


def _first(items: list, n: int = 10) -> str:
    return ", ".join(str(i) for i in items[:n]) + (f" (+{len(items) - n} more)" if len(items) > n else "")


def _holding(raw) -> tuple[str, int] | None:
    text = _s(raw)
    if text is None or len(text) < 3 or text[:2] not in ("r:", "c:") or not text[2:].isdigit():
        return None
    return text[0], int(text[2:])


class ConsistencyChecker:
    """Checks the files service's keys (see the module docstring); ``check`` returns the report as a dict."""

    def __init__(
        self,
        files,
        shares: ShareStore | None = None,
        *,
        settle: float = 1.0,
        scan_count: int = SCAN_COUNT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        from redfile_files.catalogue.service import FilesService

        self.files = files
        self.redis: redis.Redis = files.store.redis
        self.shares = shares or ShareStore(self.redis)
        # Deep checks read through the download path, with null metrics: verifying is not downloading.
        self.reader = FilesService(files.store, files.settings, ledger=files.ledger, encryption=files.encryption)
        self.settle = settle
        self.scan_count = scan_count
        self.clock = clock
        self.sleep = sleep

    def check(self, *, deep: bool = False, repair: bool = False, strict: bool = False, max_seconds: float | None = None) -> dict:
        started = self.clock()
        run = _Run(self, deep=deep, deadline=None if max_seconds is None else started + max_seconds)
        run.execute()
        repairs: list[dict] | None = [] if repair else None
        if repair and run.fixable():
            repairs = run.repair()
            run = _Run(self, deep=deep, deadline=None if max_seconds is None else started + max_seconds)
            run.execute()
        report = run.report(strict=strict, seconds=self.clock() - started)
        if repairs is not None:
            report["repairs"] = repairs
        return report


class _Run:
    """One walk over the keys; problems are recorded with what to look at again."""

    def __init__(self, checker: ConsistencyChecker, *, deep: bool, deadline: float | None) -> None:
        self.c = checker
        self.r = checker.redis
        self.deep = deep
        self.deadline = deadline
        self.started_at = iso(time.time())
        self.complete = True
        self.problems: dict[tuple[str, str, str], tuple[Problem, tuple]] = {}
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
        self._emit = self._record

    # -- bookkeeping --------------------------------------------------------------
    def _record(self, problem: Problem, target: tuple) -> None:
        key = (problem.kind, problem.key, problem.id or "")
        if key in self.problems:
            return
        self.counts[problem.kind] += 1
        if len(self.problems) < MAX_PROBLEMS:
            self.problems[key] = (problem, target)
            self.found_at[key] = self.c.clock()

    def emit(self, kind: str, key: str, detail: str, target: tuple, *, id: str | None = None, user: str | None = None) -> None:
        self._emit(Problem(kind, key, detail, id, user), target)

    def mark_pending(self, file_id: str, user: str | None, reason: str, issues: list[str]) -> None:
        """A disagreement the reconciler owns (``due``, ``leased``) or an upload that changed while read (``active``)."""
        self.pending_ids.add(file_id)
        if file_id in self.pending:
            return
        self.pending_total += 1
        if len(self.pending) < MAX_LISTED:
            self.pending[file_id] = {"id": file_id, "user": user, "reason": reason, "issues": issues}

    def out_of_time(self) -> bool:
        if self.deadline is not None and self.c.clock() > self.deadline:
            self.complete = False
        return not self.complete

    def tick(self) -> None:
        sec, usec = self.r.time()
        self.now_us = int(sec) * US + int(usec)

    def due_state(self, score, target_us: int | None = None, *, whole_seconds: bool = False) -> str | None:
        """``due`` (the sweep will look at it), ``leased`` (an operation may be in flight) or None (settled)."""
        if score is None:
            return None
        s = int(float(score))
        if s <= self.now_us:
            return "due"
        if s - self.now_us <= L.LEASE_US + SKEW_US and s != target_us and not (whole_seconds and s % US == 0):
            return "leased"
        return None

    def pipe(self, fill: Callable) -> list:
        with self.r.pipeline(transaction=False) as p:
            fill(p)
            return [None if isinstance(x, Exception) else x for x in p.execute(raise_on_error=False)]

    # -- the walk -------------------------------------------------------------------
    def execute(self) -> None:
        self.tick()
        keys = self.r.scan_iter(match="files:*", count=self.c.scan_count)
        while not self.out_of_time():
            batch = list(islice(keys, BATCH))
            if not batch:
                break
            self.tick()
            self.walk_batch(batch)
        for user in sorted(self.users | set(self.user_files) | set(self.user_uploads)):
            if self.out_of_time():
                break
            self.tick()
            self.check_user(user)
        if not self.out_of_time():
            self.tick()
            self.check_global()
        self.recheck()

    def walk_batch(self, raw_keys: list) -> None:
        known: list[tuple[str, Family]] = []
        for raw in raw_keys:
            key = _s(raw)
            fam = classify(key) if key is not None else None
            if fam is None:
                shown = key if key is not None else repr(raw)
                self.emit("unknown_key", shown, "not a key family of the files service", ("exists", shown))
            else:
                known.append((key, fam))
        types = self.pipe(lambda p: [p.type(k) for k, _ in known])
        by: dict[str, list[tuple[str, Family]]] = {}
        for (key, fam), kind in zip(known, types):
            kind = _s(kind)
            if kind == "none":
                continue  # gone since the SCAN
            if kind != fam.type:
                self.emit("wrong_type", key, f"is a {kind}, must be a {fam.type}", ("exists", key))
                continue
            self.summary["keys"] += 1
            by.setdefault(fam.space + ":" + fam.part, []).append((key, fam))
            if fam.space == "user":
                self.users.add(fam.tag)
        self.check_files([f.tag for _, f in by.get("id:meta", [])])
        self.check_uploads([f.tag for _, f in by.get("id:upload", [])])
        self.check_id_keys([kf for part in ("parts", "chunk", "staging", "shares", "recipients") for kf in by.get("id:" + part, [])])
        self.check_shares([(f.tag, f.arg) for _, f in by.get("id:share", [])])
        self.check_links(
            [f.tag for _, f in by.get("link:link", [])], [k for part in ("pwfail", "pwcheck") for k, _ in by.get("link:" + part, [])]
        )

    # -- files ------------------------------------------------------------------------
    def check_files(self, ids: list[str]) -> None:
        if not ids:
            return
        rows = self.pipe(
            lambda p: [
                (p.hgetall(meta_key(i)), p.exists(upload_key(i)), p.hlen(parts_key(i)), p.pttl(meta_key(i)), p.pttl(parts_key(i)))
                for i in ids
            ]
        )
        live = []
        for n, file_id in enumerate(ids):
            raw, upload, hlen, meta_ttl, parts_ttl = rows[5 * n : 5 * n + 5]
            meta = _hash(raw)
            if not meta:
                continue  # deleted or expired since the SCAN
            key, target = meta_key(file_id), ("file", file_id)
            bad = _meta_problems(file_id, meta)
            if bad:
                self.emit("file_record_incomplete", key, _first(bad), target, id=file_id, user=meta.get("owner"))
                continue
            owner, size, expires = meta["owner"], int(meta["size"]), int(meta.get("expires_ts") or 0)
            self.summary["files"] += 1
            self.summary["file_bytes"] += size
            row = self.user_files.setdefault(owner, [0, 0])
            row[0], row[1] = row[0] + 1, row[1] + size
            if upload:
                self.emit("file_and_upload", key, "an upload hash exists for this file's id", target, id=file_id, user=owner)
            if not expires and (_expires(meta_ttl) or _expires(parts_ttl)):
                self.emit("key_expiry_wrong", key, "a permanent file's meta or chunk table expires", target, id=file_id, user=owner)
            self.check_chunk_table(file_id, meta, hlen or 0, owner)
            if self.deep:
                self.verify_bytes(file_id, meta, owner)
            live.append((file_id, owner, size, expires))
        looks = self.pipe(
            lambda p: [
                (
                    p.hget(L.held_key(o), i),
                    p.zscore(L.owner_index(o), i),
                    p.zscore(L.due_key(o), i),
                    p.zscore(L.ALL_INDEX, i),
                    p.hget(L.ALL_SIZES, i),
                )
                for i, o, _, _ in live
            ]
        )
        for n, (file_id, owner, size, expires) in enumerate(live):
            held, indexed, due, gindexed, gsize = looks[5 * n : 5 * n + 5]
            issues = []
            if _holding(held) != ("c", size):
                issues.append(("file_not_charged", f"held is {_s(held)!r}, the file's size is {size}"))
            if indexed is None:
                issues.append(("file_not_indexed", "not in its owner's index"))
            if gindexed is None or _int(gsize) != size:
                issues.append(("file_not_indexed", f"global index: {'in' if gindexed is not None else 'absent'}, size {_s(gsize)}"))
            if expires and due is None:
                issues.append(("due_missing", f"expires at {expires} but has no due entry"))
            self.settle_issues(file_id, owner, issues, due, expires * US if expires else None, ("file", file_id), meta_key(file_id))

    def settle_issues(self, file_id: str, owner: str, issues: list, due, target_us, target: tuple, key: str, whole: bool = False) -> None:
        if not issues:
            return
        state = self.due_state(due, target_us, whole_seconds=whole)
        if state is not None:
            self.mark_pending(file_id, owner, state, [d for _, d in issues])
            return
        for kind, detail in issues:
            self.emit(kind, key, detail, target, id=file_id, user=owner)

    def chunk_rows(self, file_id: str, n: int):
        """``(index, part or None, stored length, exists, pttl)`` of chunks ``0..n-1``, CHUNK_BATCH per round trip."""
        for start in range(0, n, CHUNK_BATCH):
            idx = list(range(start, min(n, start + CHUNK_BATCH)))

            def fill(p):
                p.hmget(parts_key(file_id), idx)
                for i in idx:
                    p.strlen(chunk_key(file_id, i))
                    p.exists(chunk_key(file_id, i))
                    p.pttl(chunk_key(file_id, i))

            res = self.pipe(fill)
            raws = res[0] or [None] * len(idx)
            for j, i in enumerate(idx):
                strlen, exists, ttl = res[1 + 3 * j : 4 + 3 * j]
                yield i, _part(raws[j]), strlen, exists, ttl

    def check_chunk_table(self, file_id: str, meta: dict, hlen: int, owner: str) -> None:
        n, size, chunk = int(meta["total_chunks"]), int(meta["size"]), int(meta.get("chunk_size") or 0)
        sealed, permanent = bool(meta.get("dek")), not int(meta.get("expires_ts") or 0)
        total, found, parts = 0, 0, []
        missing_part, missing, wrong, uneven, expiring = [], [], [], [], []
        for i, part, strlen, exists, ttl in self.chunk_rows(file_id, n):
            if part is None:
                missing_part.append(i)
                continue
            found += 1
            total += part.size
            parts.append(part)
            if not exists:
                missing.append(i)
            elif strlen != part.size + (SEAL_OVERHEAD if sealed else 0):
                wrong.append(f"{i} ({strlen} bytes stored for {part.size})")
            if chunk and (part.size > chunk or (i < n - 1 and part.size != chunk)):
                uneven.append(i)
            if permanent and exists and _expires(ttl):
                expiring.append(i)
        self.summary["chunks"] += found
        key, target = meta_key(file_id), ("file", file_id)
        if missing_part or hlen != n:
            self.emit(
                "chunk_table_mismatch",
                parts_key(file_id),
                f"{hlen} parts for {n} chunks; missing or unreadable: {_first(missing_part)}",
                target,
                id=file_id,
                user=owner,
            )
        if missing:
            self.emit("chunk_missing", key, f"chunks not stored: {_first(missing)}", target, id=file_id, user=owner)
        if wrong or uneven:
            self.emit(
                "chunk_size_wrong",
                key,
                f"lengths: {_first(wrong)}; not of chunk_size {chunk}: {_first(uneven)}",
                target,
                id=file_id,
                user=owner,
            )
        if found == n and total != size:
            self.emit("size_mismatch", key, f"the parts add up to {total}, the file's size is {size}", target, id=file_id, user=owner)
        for field, compute in (("composite_blake3", composite), ("composite_sha256", composite_sha256), ("crc32c", file_crc32c)):
            if found == n and meta.get(field) and meta[field] != compute(parts):
                self.emit("checksum_record_mismatch", key, f"{field} differs from the chunk table's", target, id=file_id, user=owner)
        if expiring:
            self.emit("key_expiry_wrong", key, f"chunks of a permanent file expire: {_first(expiring)}", target, id=file_id, user=owner)

    def verify_bytes(self, file_id: str, meta: dict, owner: str) -> None:
        record = FileRecord.from_meta(meta)
        digest = FileDigest() if record.sha256 else None  # SHA-256 only where the file has one
        parts = []
        key, target = meta_key(file_id), ("file", file_id)
        try:
            for piece in self.c.reader.read_chunks(record, by_chunk=True):  # one piece per chunk, each checked against its CRC32C
                parts.append(part_of(piece))
                if digest is not None:
                    digest.update(piece)
        except (ChunkMissing, ChunkCorrupt) as exc:
            self.emit("data_corrupt", key, f"chunk {exc.index}: {type(exc).__name__}", target, id=file_id, user=owner)
            return
        except ApiError as exc:  # the data key does not open
            self.emit("data_corrupt", key, exc.message or exc.code, target, id=file_id, user=owner)
            return
        self.summary["bytes_verified"] += record.size
        bad = [
            name
            for name, want, have in (
                ("SHA-256", record.sha256, digest.sha256 if digest is not None else ""),
                ("CRC32C", record.crc32c, file_crc32c(parts)),
                ("composite", record.composite_blake3, composite(parts)),
            )
            if want and want != have
        ]
        if bad:
            self.emit("data_corrupt", key, f"the stored bytes do not match the file's {'/'.join(bad)}", target, id=file_id, user=owner)

    # -- uploads ----------------------------------------------------------------------
    def check_uploads(self, ids: list[str]) -> None:
        if not ids:
            return
        rows = self.pipe(lambda p: [(p.hgetall(upload_key(i)), p.hlen(parts_key(i)), p.pttl(upload_key(i))) for i in ids])
        live = []
        for n, upload_id in enumerate(ids):
            raw, hlen, ttl = rows[3 * n : 3 * n + 3]
            u = _hash(raw)
            if not u:
                continue
            key, target = upload_key(upload_id), ("upload", upload_id)
            bad = _upload_problems(u)
            if bad:
                self.emit("upload_record_incomplete", key, _first(bad), target, id=upload_id, user=u.get("owner"))
                continue
            owner = u["owner"]
            required = int(u.get("total_size") or 0) if u["mode"] == "session" else int(u["received_bytes"])
            self.summary["uploads"] += 1
            row = self.user_uploads.setdefault(owner, [0, 0])
            row[0], row[1] = row[0] + 1, row[1] + required
            if not _expires(ttl):
                self.emit("key_expiry_wrong", key, "an upload's record never expires", target, id=upload_id, user=owner)
            if self.check_upload_chunks(upload_id, u, hlen or 0):
                live.append((upload_id, owner, required, int(u["deadline"])))
        looks = self.pipe(
            lambda p: [
                (
                    p.hget(L.held_key(o), i),
                    p.zscore(L.owner_index(o), i),
                    p.zscore(L.due_key(o), i),
                    p.zscore(L.ALL_INDEX, i),
                    p.zscore(L.ALL_UPLOADS, i),
                )
                for i, o, _, _ in live
            ]
        )
        for n, (upload_id, owner, required, deadline) in enumerate(live):
            held, indexed, due, gindexed, counted = looks[5 * n : 5 * n + 5]
            h = _holding(held)
            issues = []
            if h is None or h[0] != "r" or h[1] < required:
                issues.append(("upload_not_reserved", f"held is {_s(held)!r}, at least r:{required} expected"))
            if indexed is not None or gindexed is not None:
                issues.append(("upload_indexed", "an upload in progress is in a file index"))
            if due is None:
                issues.append(("due_missing", "no due entry: its reservation would outlive it"))
            if counted is None:
                issues.append(("upload_not_counted", "not in files:{all}:uploads"))
            self.settle_issues(upload_id, owner, issues, due, None, ("upload", upload_id), upload_key(upload_id), whole=True)

    def check_upload_chunks(self, upload_id: str, u: dict, hlen: int) -> bool:
        """The stored chunks of an upload; False (pending) when the upload changed while it was read."""
        mode, n, received = u["mode"], int(u["total_chunks"]), int(u["received_bytes"])
        chunk, sealed, owner = int(u.get("chunk_size") or 0), bool(u.get("dek")), u["owner"]
        if mode == "tus" and chunk:
            n = max(n, math.ceil(received / chunk))
        total, present, missing, wrong, unexpiring, partial = 0, [], [], [], [], []
        for i, part, strlen, exists, ttl in self.chunk_rows(upload_id, n):
            if part is None:
                continue
            present.append(i)
            total += part.size
            if not exists:
                missing.append(i)
                continue
            if strlen != part.size + (SEAL_OVERHEAD if sealed else 0):
                wrong.append(f"{i} ({strlen} bytes stored for {part.size})")
            elif mode == "session" and part.size != _session_size(u, i):
                wrong.append(f"{i} (size {part.size}, must be {_session_size(u, i)})")
            elif mode == "tus" and chunk and part.size != chunk:
                partial.append((i, part.size))
            if not _expires(ttl):
                unexpiring.append(i)
        again = self.r.hmget(upload_key(upload_id), "received_bytes", "updated_at")
        if [_s(x) for x in again] != [u["received_bytes"], u.get("updated_at", "")]:
            self.mark_pending(upload_id, owner, "active", ["the upload changed while it was read"])
            return False
        # a tus upload's chunks are full but its tail (the last one stored)
        wrong += [f"{i} (size {size}: only the tail may be shorter than {chunk})" for i, size in partial if i != present[-1]]
        self.summary["chunks"] += len(present)
        key, target = upload_key(upload_id), ("upload", upload_id)
        if hlen != len(present) or (mode == "tus" and present != list(range(len(present)))):
            self.emit(
                "chunk_table_mismatch",
                parts_key(upload_id),
                f"{hlen} parts, {len(present)} of them at indices 0..{n - 1}"
                + (" (a tus upload's chunks must be contiguous)" if mode == "tus" else ""),
                target,
                id=upload_id,
                user=owner,
            )
        if missing:
            self.emit("chunk_missing", key, f"chunks not stored: {_first(missing)}", target, id=upload_id, user=owner)
        if wrong:
            self.emit("chunk_size_wrong", key, f"chunks: {_first(wrong)}", target, id=upload_id, user=owner)
        if total != received:
            self.emit("size_mismatch", key, f"the parts add up to {total}, received_bytes is {received}", target, id=upload_id, user=owner)
        if unexpiring:
            self.emit("key_expiry_wrong", key, f"chunks of an upload never expire: {_first(unexpiring)}", target, id=upload_id, user=owner)
        return True

    # -- the other keys of an id; shares and links ------------------------------------------
    def check_id_keys(self, items: list[tuple[str, Family]]) -> None:
        if not items:
            return

        def fill(p):
            for key, fam in items:
                p.exists(meta_key(fam.tag))
                p.exists(upload_key(fam.tag))
                if fam.part == "chunk":
                    p.hexists(parts_key(fam.tag), fam.arg)
                else:
                    p.pttl(key)

        res = self.pipe(fill)
        for n, (key, fam) in enumerate(items):
            has_meta, has_upload, extra = res[3 * n : 3 * n + 3]
            target = ("exists", key)
            if fam.part == "staging":
                if extra == -2:
                    continue  # gone since the SCAN
                if not _expires(extra):
                    self.emit("orphan_key", key, "a staging key without TTL", target, id=fam.tag)
                else:
                    self.summary["transient_keys"] += 1
            elif fam.part in ("shares", "recipients"):
                if not has_meta:
                    self.emit("orphan_share", key, f"the {fam.part} of a file that does not exist", target, id=fam.tag)
                else:
                    self.check_share_lists(fam.tag, fam.part)
            elif not (has_meta or has_upload):
                self.emit(
                    "orphan_key", key, f"a {'chunk' if fam.part == 'chunk' else 'chunk table'} of no file or upload", target, id=fam.tag
                )
            elif fam.part == "chunk" and not extra:
                self.emit("orphan_key", key, "a chunk that is not in its chunk table", target, id=fam.tag)

    def check_share_lists(self, file_id: str, part: str) -> None:
        key = shares_key(file_id) if part == "shares" else recipients_key(file_id)
        for batch in _stream(self.r.hscan_iter(key, count=SCAN_COUNT)):
            names = [_s(k) or "" for k, _ in batch]
            if part == "shares":
                there = self.pipe(lambda p: [p.exists(share_key(file_id, sid)) for sid in names])
                for sid, ok in zip(names, there):
                    if not ok:
                        self.emit("dangling_share_entry", key, f"share {sid} does not exist", ("exists", key), id=file_id)
            else:
                there = self.pipe(lambda p: [p.hexists(inbox_key(u), file_id) for u in names])
                for user, ok in zip(names, there):
                    if not ok:
                        self.emit("recipient_not_in_inbox", key, f"{user}'s inbox lacks the file", ("exists", key), id=file_id, user=user)

    def check_shares(self, pairs: list[tuple[str, str]]) -> None:
        if not pairs:
            return
        rows = self.pipe(
            lambda p: [(p.hgetall(share_key(f, s)), p.hget(meta_key(f), "owner"), p.hexists(shares_key(f), s)) for f, s in pairs]
        )
        found = []
        for n, (fid, sid) in enumerate(pairs):
            share, owner, listed = _hash(rows[3 * n]), _s(rows[3 * n + 1]), rows[3 * n + 2]
            key, target = share_key(fid, sid), ("share", (fid, sid))
            if not share:
                continue
            self.summary["shares"] += 1
            if owner is None:
                self.emit("orphan_share", key, "a share of a file that does not exist", target, id=fid, user=share.get("owner"))
                continue
            if (
                share.get("id") != sid
                or share.get("file_id") != fid
                or share.get("owner") != owner
                or not _HEX64.fullmatch(share.get("token_sha256", ""))
            ):
                self.emit("share_record_invalid", key, "id, file_id, owner or token_sha256 does not match", target, id=fid, user=owner)
                continue
            if not listed:
                self.emit("share_not_listed", key, "not in the file's shares list", target, id=fid, user=owner)
            found.append((fid, sid, owner, share["token_sha256"]))
        looks = self.pipe(lambda p: [(p.get(link_key(t)), p.hget(links_key(o), s)) for _, s, o, t in found])
        for n, (fid, sid, owner, _) in enumerate(found):
            link, listed = _s(looks[2 * n]), _s(looks[2 * n + 1])
            key, target = share_key(fid, sid), ("share", (fid, sid))
            if link != f"{fid}:{sid}":
                self.emit("share_link_missing", key, f"the token's lookup holds {link!r}", target, id=fid, user=owner)
            if listed != fid:
                self.emit("share_not_in_owner_links", key, f"{owner}'s links hold {listed!r}", target, id=fid, user=owner)

    def check_links(self, hashes: list[str], counters: list[str]) -> None:
        values = self.pipe(lambda p: [p.get(link_key(h)) for h in hashes]) if hashes else []
        pairs = [(h, (_s(v) or "").partition(":")) for h, v in zip(hashes, values) if v is not None]
        tokens = self.pipe(lambda p: [p.hget(share_key(f, s), "token_sha256") for _, (f, _, s) in pairs]) if pairs else []
        for (sha, (fid, _, sid)), token in zip(pairs, tokens):
            if _s(token) != sha:
                key = link_key(sha)
                self.emit(
                    "orphan_link", key, f"looks up share {sid} of file {fid}, which is not this token's", ("link", sha), id=fid or None
                )
        ttls = self.pipe(lambda p: [p.pttl(k) for k in counters]) if counters else []
        for key, ttl in zip(counters, ttls):
            if ttl == -1:
                self.emit("orphan_link", key, "a password counter without TTL", ("exists", key))
            else:
                self.summary["transient_keys"] += 1

    # -- users ----------------------------------------------------------------------------
    def check_user(self, user: str) -> None:
        self.summary["users"] += 1
        held_k, quota_k, target = L.held_key(user), L.quota_key(user), ("user", user)
        if (self.r.hlen(held_k) or 0) <= ATOMIC_LIMIT:
            with self.r.pipeline(transaction=True) as p:  # one snapshot: the sums change together with held
                p.hgetall(held_k)
                p.hmget(quota_k, "used", "reserved")
                raw, quota = p.execute()
            entries = list(raw.items())
        else:
            quota = self.r.hmget(quota_k, "used", "reserved")
            entries = self.r.hscan_iter(held_k, count=SCAN_COUNT)  # big: in batches, not one snapshot
        used, reserved = _int(quota[0]) or 0, _int(quota[1]) or 0
        sums = {"c": 0, "r": 0}
        for batch in _stream(entries):
            ids = [_s(k) or "" for k, _ in batch]
            looks = self.pipe(
                lambda p: [(p.hget(meta_key(i), "owner"), p.hget(upload_key(i), "owner"), p.zscore(L.due_key(user), i)) for i in ids]
            )
            for n, (file_id, (_, raw)) in enumerate(zip(ids, batch)):
                h = _holding(raw)
                if h is None:
                    self.emit("holding_invalid", held_k, f"{file_id}: {_s(raw)!r}", target, id=file_id, user=user)
                    continue
                sums[h[0]] += h[1]
                meta_owner, upload_owner, due = _s(looks[3 * n]), _s(looks[3 * n + 1]), looks[3 * n + 2]
                if user not in (meta_owner, upload_owner):  # a file or upload of the user: checked from its own keys
                    self.settle_issues(
                        file_id,
                        user,
                        [("dangling_holding", f"{_s(raw)} for an id that is neither their file nor upload")],
                        due,
                        None,
                        target,
                        held_k,
                    )
        if used != sums["c"]:
            self.emit("usage_drift", quota_k, f"used is {used}, the charges add up to {sums['c']}", target, user=user)
        if reserved != sums["r"]:
            self.emit("reservation_drift", quota_k, f"reserved is {reserved}, the reservations add up to {sums['r']}", target, user=user)
        for batch in _stream(self.r.zscan_iter(L.owner_index(user), count=SCAN_COUNT)):
            ids = [_s(m) or "" for m, _ in batch]
            looks = self.pipe(lambda p: [(p.hget(held_k, i), p.zscore(L.due_key(user), i)) for i in ids])
            for n, file_id in enumerate(ids):
                if (_holding(looks[2 * n]) or ("",))[0] != "c":
                    self.settle_issues(
                        file_id,
                        user,
                        [("index_without_charge", f"{file_id} is indexed, held is {_s(looks[2 * n])!r}")],
                        looks[2 * n + 1],
                        None,
                        target,
                        L.owner_index(user),
                    )
        for batch in _stream(self.r.zscan_iter(L.due_key(user), count=SCAN_COUNT)):
            ids = [_s(m) or "" for m, _ in batch]
            looks = self.pipe(lambda p: [(p.hexists(held_k, i), p.exists(meta_key(i), upload_key(i))) for i in ids])
            for n, (file_id, (_, score)) in enumerate(zip(ids, batch)):
                state = self.due_state(score)
                if state is not None:
                    self.pending_ids.add(file_id)
                elif not looks[2 * n] and not looks[2 * n + 1]:
                    self.emit(
                        "orphan_due",
                        L.due_key(user),
                        f"{file_id} is due at {int(score)} but neither held nor alive",
                        target,
                        id=file_id,
                        user=user,
                    )
        self.check_user_links(user)
        self.user_rows[user] = {
            "user": user,
            "used": used,
            "charged": sums["c"],
            "files": self.user_files.get(user, [0, 0])[0],
            "files_bytes": self.user_files.get(user, [0, 0])[1],
            "reserved": reserved,
            "reservations": sums["r"],
            "uploads": self.user_uploads.get(user, [0, 0])[0],
            "uploads_min_bytes": self.user_uploads.get(user, [0, 0])[1],
        }

    def check_user_links(self, user: str) -> None:
        key = links_key(user)
        for batch in _stream(self.r.hscan_iter(key, count=SCAN_COUNT)):
            pairs = [(_s(s) or "", _s(f) or "") for s, f in batch]
            looks = self.pipe(lambda p: [(p.hget(share_key(f, s), "owner"), p.exists(meta_key(f))) for s, f in pairs])
            for n, (sid, fid) in enumerate(pairs):
                if _s(looks[2 * n]) != user or not looks[2 * n + 1]:
                    self.emit("stale_link_entry", key, f"share {sid} of file {fid} is gone", ("user", user), id=fid, user=user)
        key = inbox_key(user)
        for batch in _stream(self.r.hscan_iter(key, count=SCAN_COUNT)):
            pairs = [(_s(f) or "", _s(o) or "") for f, o in batch]
            looks = self.pipe(lambda p: [(p.hexists(recipients_key(f), user), p.hget(meta_key(f), "owner")) for f, _ in pairs])
            for n, (fid, owner) in enumerate(pairs):
                if not looks[2 * n] or _s(looks[2 * n + 1]) != owner:
                    self.emit(
                        "stale_inbox_entry", key, f"file {fid} of {owner} is no longer shared with them", ("user", user), id=fid, user=user
                    )

    # -- the global slot ----------------------------------------------------------------
    def check_global(self) -> None:
        target = ("global", None)
        for batch in _stream(self.r.zscan_iter(L.ALL_INDEX, count=SCAN_COUNT)):
            ids = [_s(m) or "" for m, _ in batch]
            metas = self.pipe(lambda p: [p.exists(meta_key(i)) for i in ids])
            for file_id, is_file in zip(ids, metas):
                if not is_file:
                    self.dead_entry("dangling_index_entry", L.ALL_INDEX, file_id, "is not a file", target)
        if (self.r.hlen(L.ALL_SIZES) or 0) <= ATOMIC_LIMIT:
            with self.r.pipeline(transaction=True) as p:
                p.hgetall(L.ALL_SIZES)
                p.get(L.ALL_BYTES)
                raw, stored = p.execute()
            entries = list(raw.items())
        else:
            stored = self.r.get(L.ALL_BYTES)
            entries = self.r.hscan_iter(L.ALL_SIZES, count=SCAN_COUNT)
        total = 0
        for batch in _stream(entries):
            ids = [_s(k) or "" for k, _ in batch]
            indexed = self.pipe(lambda p: [p.zscore(L.ALL_INDEX, i) for i in ids])
            for (file_id, (_, size)), score in zip(zip(ids, batch), indexed):
                total += _int(size) or 0
                if score is None:
                    self.dead_entry("size_without_index", L.ALL_SIZES, file_id, "has a size but is not indexed", target)
        if (_int(stored) or 0) != total:
            self.emit("global_bytes_drift", L.ALL_BYTES, f"holds {_s(stored)}, the sizes add up to {total}", target)
        for batch in _stream(self.r.zscan_iter(L.ALL_UPLOADS, count=SCAN_COUNT)):
            ids = [_s(m) or "" for m, _ in batch]
            alive = self.pipe(lambda p: [p.exists(upload_key(i)) for i in ids])
            for upload_id, ok in zip(ids, alive):
                if not ok:
                    self.dead_entry("upload_count_stale", L.ALL_UPLOADS, upload_id, "is no upload in progress", target)
        if self.r.pttl(L.SWEEP_LOCK) == -1:
            self.emit("bad_value", L.SWEEP_LOCK, "the sweep's lock never expires: no sweep would run again", target)
        cursor = self.r.get(L.GC_CURSOR)
        if cursor is not None and _int(cursor) is None:
            self.emit("bad_value", L.GC_CURSOR, f"holds {_s(cursor)!r}", target)
        if self.r.exists(L.ALL_BYTES) and (_int(stored) is None or _int(stored) <= 0):
            self.emit("bad_value", L.ALL_BYTES, f"holds {_s(stored)!r} (deleted at 0)", target)

    def dead_entry(self, kind: str, key: str, file_id: str, detail: str, target: tuple) -> None:
        if file_id in self.pending_ids:
            self.mark_pending(file_id, None, "due", [f"{key}: {file_id} {detail}"])
        else:
            self.emit(kind, key, f"{file_id} {detail}", target, id=file_id)

    # -- confirm, report, repair ----------------------------------------------------------
    def recheck(self) -> None:
        """Look again, after ``settle`` seconds, at what was found; keep what is still there."""
        if not self.problems:
            return
        wait = self.c.settle - (self.c.clock() - min(self.found_at.values()))
        if wait > 0:
            self.c.sleep(wait)
        again = _Run(self.c, deep=self.deep, deadline=None)
        again.users, again.pending_ids, again.user_files, again.user_uploads = set(), set(self.pending_ids), {}, {}
        again.tick()
        targets: dict[str, set] = {}
        for _, target in self.problems.values():
            targets.setdefault(target[0], set()).add(target[1])
        keys = sorted(targets.get("exists", set()))
        for batch in _batches(keys, BATCH):
            again.walk_batch(batch)
        again.check_files(sorted(targets.get("file", set())))
        again.check_uploads(sorted(targets.get("upload", set())))
        again.check_shares(sorted(targets.get("share", set())))
        again.check_links(sorted(targets.get("link", set())), [])
        for user in sorted(targets.get("user", set())):
            again.check_user(user)
        if "global" in targets:
            again.check_global()
        confirmed = {k: v for k, v in self.problems.items() if k in again.problems}
        listed = Counter(kind for kind, _, _ in self.problems)
        # what was only counted (past MAX_PROBLEMS) could not be looked at again: it stays counted
        self.counts = Counter({kind: n - listed[kind] for kind, n in self.counts.items() if n > listed[kind]})
        self.counts.update(kind for kind, _, _ in confirmed)
        self.problems = confirmed
        for file_id, row in again.pending.items():
            self.mark_pending(file_id, row["user"], row["reason"], row["issues"])

    def report(self, *, strict: bool, seconds: float) -> dict:
        problems = [p for p, _ in self.problems.values()]
        errors = sum(n for kind, n in self.counts.items() if KINDS[kind][0] == ERROR)
        stale = sum(n for kind, n in self.counts.items() if KINDS[kind][0] == STALE)
        bad_users = {p.user for p in problems if p.user}
        rows = sorted(self.user_rows.values(), key=lambda r: (r["user"] not in bad_users, r["user"]))
        for row in rows:
            row["ok"] = row["user"] not in bad_users
        summary = dict(self.summary)
        summary["pending"] = self.pending_total
        return {
            "ok": self.complete and errors == 0 and (not strict or stale == 0),
            "complete": self.complete,
            "deep": self.deep,
            "strict": strict,
            "started_at": self.started_at,
            "seconds": round(seconds, 3),
            "summary": summary,
            "errors": errors,
            "stale": stale,
            "counts": dict(sorted(self.counts.items())),
            "problems": [asdict(p) | {"severity": p.severity} for p in problems],
            "problems_truncated": sum(self.counts.values()) > len(problems),
            "pending": list(self.pending.values())[:MAX_LISTED],
            "users": rows[:MAX_LISTED],
            "users_truncated": len(rows) > MAX_LISTED,
        }

    def fixable(self) -> bool:
        return any(p.kind in _REPAIRABLE for p, _ in self.problems.values()) or bool(self.pending)

    def repair(self) -> list[dict]:
        """Only what the service does to heal itself (see the module docstring); one line per action."""
        files, done = self.c.files, []
        sweep: set[str] = set()
        for problem, _ in self.problems.values():
            kind, fid, user = problem.kind, problem.id, problem.user
            if kind in _RECONCILED and fid and user:
                if self.make_due(user, fid):
                    sweep.add(user)
                    done.append({"action": "reconcile", "id": fid, "user": user, "for": kind})
            elif kind in ("dangling_index_entry", "size_without_index") and fid:
                files.ledger.unindex_global(fid)
                done.append({"action": "unindex", "id": fid, "for": kind})
            elif kind == "upload_count_stale" and fid:
                files.ledger.upload_ended(fid)
                done.append({"action": "uncount_upload", "id": fid, "for": kind})
            elif kind == "stale_link_entry" and user:
                sid = problem.detail.split()[1]
                self.c.shares.forget_owner_links(user, [sid])
                done.append({"action": "forget_link", "share": sid, "user": user, "for": kind})
            elif kind == "stale_inbox_entry" and user and fid:
                self.c.shares.forget_inbox(user, [fid])
                done.append({"action": "forget_inbox", "id": fid, "user": user, "for": kind})
            elif kind == "orphan_share" and fid:
                self.c.shares.purge_file(fid)  # what deleting the file does
                sid = problem.key.rpartition(":share:")[2] if ":share:" in problem.key else ""
                row = self.c.shares.get_link(fid, sid) if sid else None
                if row:  # a share its file's list does not name: removed as its owner's revoke removes it
                    self.c.shares.revoke(fid, sid, row.get("token_sha256", ""), row.get("owner", ""))
                done.append({"action": "purge_shares", "id": fid, "for": kind})
        for row in self.pending.values():
            if row["reason"] == "due" and row["user"]:
                sweep.add(row["user"])
        for user in sorted(sweep):
            n = files.reconciler.sweep_user(user, rounds=50)
            done.append({"action": "sweep", "user": user, "reconciled": n})
        return done

    def make_due(self, user: str, file_id: str) -> bool:
        """Make the id due now, unless its due score changed since we looked (a lease): the reconciler's compare-and-set."""
        due = L.due_key(user)
        seen = self.r.zscore(due, file_id)
        if self.due_state(seen) == "leased":
            return False

        def change(pipe) -> bool:
            if pipe.zscore(due, file_id) != seen:
                return False
            pipe.multi()
            pipe.zadd(due, {file_id: 1})
            return True

        return bool(self.r.transaction(change, due, value_from_callable=True))


# What the reconciler sets right for an id (not upload_not_counted: an upload enters files:{all}:uploads
# only when it is created, so that a finished one is never counted again).
_RECONCILED = {
    "file_not_charged",
    "file_not_indexed",
    "due_missing",
    "upload_not_reserved",
    "upload_indexed",
    "dangling_holding",
    "index_without_charge",
    "orphan_due",
}
_REPAIRABLE = _RECONCILED | {
    "dangling_index_entry",
    "size_without_index",
    "upload_count_stale",
    "stale_link_entry",
    "stale_inbox_entry",
    "orphan_share",
}


def _batches(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i : i + size]


def _stream(iterator, size: int = BATCH):
    """Lists of up to ``size`` items of an iterator (an HSCAN or ZSCAN), never all of it at once."""
    iterator = iter(iterator)
    while batch := list(islice(iterator, size)):
        yield batch


def _expires(pttl) -> bool:
    """PTTL: -1 the key never expires, -2 it does not exist."""
    return isinstance(pttl, int) and pttl >= 0


def _part(raw) -> Part | None:
    text = _s(raw)
    if not text:
        return None
    try:
        part = Part.decode(text)
        bytes.fromhex(part.sha256 + part.blake3 + part.crc32c)
    except ValueError:
        return None
    fingerprint = len(part.blake3) == 64 or len(part.sha256) == 64
    return part if fingerprint and len(part.crc32c) == 8 and part.size >= 0 else None


def _session_size(u: dict, index: int) -> int:
    chunk, total, n = int(u["chunk_size"]), int(u["total_size"]), int(u["total_chunks"])
    return total - chunk * (n - 1) if index == n - 1 else chunk


def _meta_problems(file_id: str, meta: dict) -> list[str]:
    bad = [f"{f} is missing" for f in ("id", "name", "owner", "created_at", "kind", "size", "total_chunks") if not meta.get(f)]
    for f in ("size", "total_chunks", "chunk_size", "created_ms", "expires_ts"):  # the last three may be empty
        if meta.get(f) and (_int(meta[f]) is None or _int(meta[f]) < 0):
            bad.append(f"{f} is not a whole number")
    if meta.get("id") and meta["id"] != file_id:
        bad.append(f"id is {meta['id']}")
    if meta.get("sha256") and not _HEX64.fullmatch(meta["sha256"]):
        bad.append("sha256 is not 64 hex digits")
    if meta.get("kind") and meta["kind"] not in ("file", "text"):
        bad.append(f"kind is {meta['kind']!r}")
    return bad


def _upload_problems(u: dict) -> list[str]:
    bad = [f"{f} is missing" for f in ("owner", "mode", "total_chunks", "received_bytes", "deadline") if u.get(f) in (None, "")]
    bad += [
        f"{f} is not a whole number"
        for f in ("total_chunks", "received_bytes", "deadline", "chunk_size", "total_size")
        if u.get(f) not in (None, "") and (_int(u[f]) is None or _int(u[f]) < 0)
    ]
    if u.get("mode") and u["mode"] not in _MODES:
        bad.append(f"mode is {u['mode']!r}")
    if u.get("mode") == "session" and (_int(u.get("chunk_size")) in (None, 0) or _int(u.get("total_size")) is None):
        bad.append("a session needs total_size and chunk_size")
    return bad


# -- the operators' command ---------------------------------------------------------------
def build_checker(settle: float = 1.0) -> ConsistencyChecker:
    """A checker on the settings of the environment, as the files service reads them."""
    from redfile_common.redis_client import make_redis
    from redfile_common.settings import load_settings
    from redfile_files.catalogue.service import FilesService
    from redfile_files.crypto import Encryption, parse_master_keys
    from redfile_files.settings import FilesSettings
    from redfile_files.storage.files import FileStore

    settings = load_settings(FilesSettings)
    client = make_redis(settings)
    store = FileStore(client, upload_ttl=settings.upload_ttl, max_file_bytes=settings.max_file_bytes)
    files = FilesService(store, settings, encryption=Encryption(parse_master_keys(settings.encryption_keys)))
    return ConsistencyChecker(files, ShareStore(client), settle=settle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="redfile-check",
        description="Check the files service's Redis data (read-only unless --repair); prints a JSON report. "
        "Exit status: 0 consistent, 1 problems found (or the walk did not finish), 2 could not run.",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also read every file's bytes and check them against its CRC32C and composite (and SHA-256, when it has one)",
    )
    parser.add_argument(
        "--repair", action="store_true", help="let the service's own repairs run (reconcile, drop dead index entries), then check again"
    )
    parser.add_argument("--strict", action="store_true", help="stale links/inbox entries fail the check too")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop the walk after this long (the report is then incomplete)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before a problem found is looked at again (default 1)")
    parser.add_argument("--summary", action="store_true", help="print the report without the per-user table")
    args = parser.parse_args(argv)
    try:
        checker = build_checker(settle=max(0.0, args.settle))
        report = checker.check(deep=args.deep, repair=args.repair, strict=args.strict, max_seconds=args.max_seconds)
    except (ValueError, redis.RedisError) as exc:  # SettingsError is a ValueError; never print a secret
        print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}), file=sys.stderr)
        return 2
    if args.summary:
        report.pop("users", None)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
