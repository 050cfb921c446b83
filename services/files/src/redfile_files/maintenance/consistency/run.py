"""One run of the check: the walk over every key, the look again at what it found, and the report."""

from __future__ import annotations

from collections import Counter

from redfile_files.maintenance.consistency.files import check_files, check_uploads
from redfile_files.maintenance.consistency.problems import ERROR, KINDS, STALE, Target
from redfile_files.maintenance.consistency.shares import check_chunk_keys, check_id_keys, check_links, check_shares, check_tombstones
from redfile_files.maintenance.consistency.users import check_global, check_user
from redfile_files.maintenance.consistency.walk import MAX_LISTED, Walk
from redfile_files.storage.inspect import BATCH, as_text, batches
from redfile_files.storage.keys import Family, classify


def execute(walk: Walk) -> None:
    """Walk every ``files:*`` key by family, then each user's slot and the global slot; then look again."""
    walk.tick()
    for batch in batches(walk.inspect.scan_keys(walk.sources.scan_count), BATCH):
        if walk.out_of_time():
            break
        walk.tick()
        walk_batch(walk, batch)
    for user in sorted(walk.users | set(walk.user_files) | set(walk.user_uploads)):
        if walk.out_of_time():
            break
        walk.tick()
        check_user(walk, user)
    if not walk.out_of_time():
        walk.tick()
        check_global(walk)
    recheck(walk)


def walk_batch(walk: Walk, raw_keys: list) -> None:
    known: list[tuple[str, Family]] = []
    for raw in raw_keys:
        key = as_text(raw)
        fam = classify(key) if key is not None else None
        if fam is None or key is None:
            shown = key if key is not None else repr(raw)
            walk.emit("unknown_key", shown, "not a key family of the files service", Target("exists", shown))
        else:
            known.append((key, fam))
    by: dict[str, list[tuple[str, Family]]] = {}
    for (key, fam), kind in zip(known, walk.inspect.types([k for k, _ in known])):
        if kind == "none":
            continue  # gone since the SCAN
        if kind != fam.type:
            walk.emit("wrong_type", key, f"is a {kind}, must be a {fam.type}", Target("exists", key))
            continue
        walk.summary["keys"] += 1
        by.setdefault(fam.space + ":" + fam.part, []).append((key, fam))
        if fam.space == "user":
            walk.users.add(fam.tag)
    check_files(walk, [f.tag for _, f in by.get("id:meta", [])])
    check_uploads(walk, [f.tag for _, f in by.get("id:upload", [])])
    check_id_keys(walk, [kf for part in ("parts", "chunk", "staging", "shares", "recipients") for kf in by.get("id:" + part, [])])
    check_chunk_keys(walk, [kf for part in ("chunk", "staging") for kf in by.get("chunk:" + part, [])])
    check_tombstones(walk, by.get("id:gone", []))
    check_shares(walk, [(f.tag, f.arg) for _, f in by.get("id:share", [])])
    parts = ("pwfail", "pwcheck", "pwfail-client", "pwcheck-client", "pwwait")
    counters = [k for part in parts for k, _ in by.get("link:" + part, [])]
    check_links(walk, [f.tag for _, f in by.get("link:link", [])], counters)


def recheck(walk: Walk) -> None:
    """Look again, after ``settle`` seconds, at what was found; keep what is still there."""
    if not walk.problems:
        return
    wait = walk.sources.settle - (walk.sources.clock() - min(walk.found_at.values()))
    if wait > 0:
        walk.sources.sleep(wait)
    again = Walk(walk.sources, deep=walk.deep, deadline=None)
    again.pending_ids = set(walk.pending_ids)
    again.tick()
    targets: dict[str, set] = {}
    for _, target in walk.problems.values():
        targets.setdefault(target.what, set()).add(target.arg)
    for batch in batches(sorted(targets.get("exists", set())), BATCH):
        walk_batch(again, batch)
    check_files(again, sorted(targets.get("file", set())))
    check_uploads(again, sorted(targets.get("upload", set())))
    check_shares(again, sorted(targets.get("share", set())))
    check_links(again, sorted(targets.get("link", set())), [])
    for user in sorted(targets.get("user", set())):
        check_user(again, user)
    if "global" in targets:
        check_global(again)
    confirmed = {k: v for k, v in walk.problems.items() if k in again.problems}
    listed = Counter(kind for kind, _, _ in walk.problems)
    # what was only counted (past MAX_PROBLEMS) could not be looked at again: it stays counted
    walk.counts = Counter({kind: n - listed[kind] for kind, n in walk.counts.items() if n > listed[kind]})
    walk.counts.update(kind for kind, _, _ in confirmed)
    walk.problems = confirmed
    for file_id, row in again.pending.items():
        walk.mark_pending(file_id, row["user"], row["reason"], row["issues"])


def report(walk: Walk, *, strict: bool, seconds: float) -> dict:
    problems = [p for p, _ in walk.problems.values()]
    errors = sum(n for kind, n in walk.counts.items() if KINDS[kind][0] == ERROR)
    stale = sum(n for kind, n in walk.counts.items() if KINDS[kind][0] == STALE)
    bad_users = {p.user for p in problems if p.user}
    rows = sorted(walk.user_rows.values(), key=lambda r: (r["user"] not in bad_users, r["user"]))
    for row in rows:
        row["ok"] = row["user"] not in bad_users
    summary = dict(walk.summary)
    summary["pending"] = walk.pending_total
    return {
        "ok": walk.complete and errors == 0 and (not strict or stale == 0),
        "complete": walk.complete,
        "deep": walk.deep,
        "strict": strict,
        "started_at": walk.started_at,
        "seconds": round(seconds, 3),
        "summary": summary,
        "errors": errors,
        "stale": stale,
        "counts": dict(sorted(walk.counts.items())),
        "problems": [p.public() for p in problems],
        "problems_truncated": sum(walk.counts.values()) > len(problems),
        "pending": list(walk.pending.values())[:MAX_LISTED],
        "users": rows[:MAX_LISTED],
        "users_truncated": len(rows) > MAX_LISTED,
    }
