"""The checks of a user's slot (holdings and their sums, index, due times) and of the global slot."""

from __future__ import annotations

from redfile_files.maintenance.consistency.indexes import check_owner_indexes
from redfile_files.maintenance.consistency.problems import Target
from redfile_files.maintenance.consistency.shares import check_user_links
from redfile_files.maintenance.consistency.walk import Walk, holding, to_int
from redfile_files.storage import keys
from redfile_files.storage.inspect import as_text, batches


def check_user(walk: Walk, user: str) -> None:
    walk.summary["users"] += 1
    held_k, quota_k, target = keys.held(user), keys.quota(user), Target("user", user)
    snapshot = walk.inspect.holdings(user)
    used, reserved = to_int(snapshot.values[0]) or 0, to_int(snapshot.values[1]) or 0
    sums = {"c": 0, "r": 0}
    for batch in batches(snapshot.entries):
        ids = [as_text(k) or "" for k, _ in batch]
        for (file_id, (_, raw)), (meta_owner, upload_owner, due) in zip(zip(ids, batch), walk.inspect.holding_owners(user, ids)):
            h = holding(raw)
            if h is None:
                walk.emit("holding_invalid", held_k, f"{file_id}: {as_text(raw)!r}", target, id=file_id, user=user)
                continue
            sums[h[0]] += h[1]
            if user not in (as_text(meta_owner), as_text(upload_owner)):  # a file or upload of the user: checked from its keys
                issue = ("dangling_holding", f"{as_text(raw)} for an id that is neither their file nor upload")
                walk.settle_issues(file_id, user, [issue], due, None, target, held_k)
    if used != sums["c"]:
        walk.emit("usage_drift", quota_k, f"used is {used}, the charges add up to {sums['c']}", target, user=user)
    if reserved != sums["r"]:
        walk.emit("reservation_drift", quota_k, f"reserved is {reserved}, the reservations add up to {sums['r']}", target, user=user)
    for members in walk.inspect.index_members(keys.user_files(user)):
        ids = [m for m, _ in members]
        for file_id, (raw, due) in zip(ids, walk.inspect.index_holdings(user, ids)):
            if (holding(raw) or ("",))[0] != "c":
                issue = ("index_without_charge", f"{file_id} is indexed, held is {as_text(raw)!r}")
                walk.settle_issues(file_id, user, [issue], due, None, target, keys.user_files(user))
    for members in walk.inspect.index_members(keys.due(user)):
        ids = [m for m, _ in members]
        for (file_id, score), (held, alive) in zip(members, walk.inspect.due_holdings(user, ids)):
            if walk.due_state(score) is not None:
                walk.pending_ids.add(file_id)
            elif not held and not alive:
                detail = f"{file_id} is due at {int(score)} but neither held nor alive"
                walk.emit("orphan_due", keys.due(user), detail, target, id=file_id, user=user)
    check_user_links(walk, user)
    check_owner_indexes(walk, user)
    files, uploads = walk.user_files.get(user, [0, 0]), walk.user_uploads.get(user, [0, 0])
    walk.user_rows[user] = {
        "user": user,
        "used": used,
        "charged": sums["c"],
        "files": files[0],
        "files_bytes": files[1],
        "reserved": reserved,
        "reservations": sums["r"],
        "uploads": uploads[0],
        "uploads_min_bytes": uploads[1],
    }


def check_global(walk: Walk) -> None:
    target = Target("global")
    for members in walk.inspect.index_members(keys.ALL_FILES):
        ids = [m for m, _ in members]
        for file_id, is_file in zip(ids, walk.inspect.files_exist(ids)):
            if not is_file:
                walk.dead_entry("dangling_index_entry", keys.ALL_FILES, file_id, "is not a file", target)
    snapshot = walk.inspect.global_sizes()
    stored = snapshot.values[0]
    total = 0
    for batch in batches(snapshot.entries):
        ids = [as_text(k) or "" for k, _ in batch]
        for (file_id, (_, size)), score in zip(zip(ids, batch), walk.inspect.globally_indexed(ids)):
            total += to_int(size) or 0
            if score is None:
                walk.dead_entry("size_without_index", keys.ALL_SIZES, file_id, "has a size but is not indexed", target)
    if (to_int(stored) or 0) != total:
        walk.emit("global_bytes_drift", keys.ALL_BYTES, f"holds {as_text(stored)}, the sizes add up to {total}", target)
    for members in walk.inspect.index_members(keys.ALL_UPLOADS):
        ids = [m for m, _ in members]
        for upload_id, ok in zip(ids, walk.inspect.uploads_exist(ids)):
            if not ok:
                walk.dead_entry("upload_count_stale", keys.ALL_UPLOADS, upload_id, "is no upload in progress", target)
    lock_ttl, cursor, bytes_exist = walk.inspect.sweep_state()
    if lock_ttl == -1:
        walk.emit("bad_value", keys.SWEEP_LOCK, "the sweep's lock never expires: no sweep would run again", target)
    if cursor is not None and to_int(cursor) is None:
        walk.emit("bad_value", keys.GC_CURSOR, f"holds {cursor!r}", target)
    stored_int = to_int(stored)
    if bytes_exist and (stored_int is None or stored_int <= 0):
        walk.emit("bad_value", keys.ALL_BYTES, f"holds {as_text(stored)!r} (deleted at 0)", target)
