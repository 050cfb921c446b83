"""Repairs: only what the service itself does to heal, then the check runs again.

Ids whose owner's slot disagrees with them are made due (a compare-and-set on the due score seen)
and swept by the reconciler; global index and in-progress entries of ids that are gone are dropped
(the sweep's walk); stale links/inbox entries are dropped (what listing does); the shares of a
missing file are purged (what a delete does).  Everything else (a missing or corrupt chunk, a
drifted counter, an orphan chunk or lookup key) is reported for a person to look at.
"""

from __future__ import annotations

from redfile_files.maintenance.consistency.problems import RECONCILED, REPAIRABLE
from redfile_files.maintenance.consistency.walk import Walk
from redfile_files.storage import Storage
from redfile_files.storage.records import IndexRow


def fixable(walk: Walk) -> bool:
    return any(p.kind in REPAIRABLE for p, _ in walk.problems.values()) or bool(walk.pending)


def run_repairs(walk: Walk, storage: Storage) -> list[dict]:
    """One line per action taken."""
    done: list[dict] = []
    sweep: set[str] = set()
    ledger, shares = storage.ledger, storage.shares
    for problem, _ in walk.problems.values():
        kind, fid, user, sid = problem.kind, problem.id, problem.user, problem.share_id
        if kind in RECONCILED and fid and user:
            if make_due(walk, storage, user, fid):
                sweep.add(user)
                done.append({"action": "reconcile", "id": fid, "user": user, "for": kind})
        elif kind == "stale_name_entry" and fid and user and problem.entry:
            found = IndexRow.of_entry(problem.entry)
            if found is not None and storage.lifecycle.adopt(user, fid, found[0]):
                done.append({"action": "settle_entry", "id": fid, "user": user, "for": kind})
        elif kind in ("dangling_index_entry", "size_without_index") and fid:
            ledger.unindex_global(fid)
            done.append({"action": "unindex", "id": fid, "for": kind})
        elif kind == "upload_count_stale" and fid:
            ledger.upload_ended(fid)
            done.append({"action": "uncount_upload", "id": fid, "for": kind})
        elif kind == "stale_link_entry" and user and sid:
            shares.forget_owner_links(user, [sid])
            done.append({"action": "forget_link", "share": sid, "user": user, "for": kind})
        elif kind == "stale_inbox_entry" and user and fid:
            shares.forget_inbox(user, [fid])
            done.append({"action": "forget_inbox", "id": fid, "user": user, "for": kind})
        elif kind == "orphan_share" and fid:
            shares.purge_file(fid)  # what deleting the file does
            row = shares.get_link(fid, sid) if sid else None
            if row:  # a share its file's list does not name: removed as its owner's revoke removes it
                shares.revoke(fid, sid or "", row.get("token_sha256", ""), row.get("owner", ""))
            done.append({"action": "purge_shares", "id": fid, "for": kind})
    for row in walk.pending.values():
        if row["reason"] == "due" and row["user"]:
            sweep.add(row["user"])
    for user in sorted(sweep):
        n = storage.lifecycle.sweep_user(user, rounds=50)
        done.append({"action": "sweep", "user": user, "reconciled": n})
    return done


def make_due(walk: Walk, storage: Storage, user: str, file_id: str) -> bool:
    """Make the id due now, unless it is leased or its due score changed since it was read."""
    seen = walk.inspect.due_score(user, file_id)
    if walk.due_state(seen) == "leased":
        return False
    return storage.ledger.make_due(user, file_id, seen)
