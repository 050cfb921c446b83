"""The checks of a user's name and size indexes and their rows in flight, against the files they name.

A file's own entries are checked with the file (``files.check_files``); here every entry is checked
for a file behind it: a names entry its file's ``meta`` confirms, or one of the id's rows in flight
while the reconciler owns the id; a size entry of an id in the user's file index; a row in flight of
an id that is leased or due, or of a file with an expiry (whose row is kept).
"""

from __future__ import annotations

from redfile_files.maintenance.consistency.problems import Target
from redfile_files.maintenance.consistency.walk import Walk, to_int
from redfile_files.storage import keys
from redfile_files.storage.inspect import as_text
from redfile_files.storage.records import IndexRow


def check_owner_indexes(walk: Walk, user: str) -> None:
    target = Target("user", user)
    names_k = keys.user_names(user)
    for members in walk.inspect.index_members(names_k):
        parsed = [(m, IndexRow.of_entry(m)) for m, _ in members]
        for m, found in parsed:
            if found is None:
                walk.emit("stale_name_entry", names_k, f"{m!r} is not an entry of the name index", target, user=user, entry=m)
        known = [(m, found) for m, found in parsed if found is not None]
        looks = walk.inspect.index_owners(user, [fid for _, (_, fid) in known])
        for (m, (row, fid)), ((owner, folder, name, _), indexed, due, rows) in zip(known, looks):
            if as_text(owner) == user and indexed is not None and IndexRow(as_text(folder) or "/", as_text(name) or "").entry(fid) == m:
                continue
            if row.entry(fid) in {r.entry(fid) for r in IndexRow.of_rows(rows)}:
                state = walk.due_state(due)
                if state is not None:
                    walk.mark_pending(fid, user, state, [f"{names_k}: an entry in flight"])
                    continue
            detail = f"{fid}: {row.folder!r} / {row.name!r} is neither its file's folder and name nor in flight"
            walk.emit("stale_name_entry", names_k, detail, target, id=fid, user=user, entry=m)
    sizes_k = keys.user_sizes(user)
    for members in walk.inspect.index_members(sizes_k):
        ids = []
        for m, _ in members:
            try:
                ids.append(keys.file_id_of(m))
            except ValueError:
                walk.emit("stale_size_entry", sizes_k, f"{m!r} is not an id of the size index", target, user=user)
        for fid, (_, indexed, due, _) in zip(ids, walk.inspect.index_owners(user, ids)):
            if indexed is None:
                walk.settle_issues(fid, user, [("stale_size_entry", f"{fid} is not in the file index")], due, None, target, sizes_k)
    rows_k = keys.index_rows(user)
    for batch in walk.inspect.rows_in_flight(user):
        ids = [fid for fid, _ in batch]
        for fid, ((_, _, _, expires), _, due, _) in zip(ids, walk.inspect.index_owners(user, ids)):
            if not (to_int(expires) or 0):
                walk.settle_issues(fid, user, [("stale_index_row", f"{fid} has rows in flight")], due, None, target, rows_k)
