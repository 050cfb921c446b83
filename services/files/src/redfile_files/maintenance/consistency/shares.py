"""The checks of an id's other keys (part tables, chunks, staging keys, share lists) and of shares and their indexes."""

from __future__ import annotations

from redfile_files.maintenance.consistency.problems import Target
from redfile_files.maintenance.consistency.walk import HEX64, Walk, expires
from redfile_files.storage import keys
from redfile_files.storage.inspect import as_hash, as_text
from redfile_files.storage.keys import Family
from redfile_files.storage.recipient_rows import row_name


def check_id_keys(walk: Walk, items: list[tuple[str, Family]]) -> None:
    for (key, fam), (has_meta, has_upload, extra) in zip(items, walk.inspect.id_keys(items)):
        target = Target("exists", key)
        if fam.part == "staging":
            if extra == -2:
                continue  # gone since the SCAN
            if not expires(extra):
                walk.emit("orphan_key", key, "a staging key without TTL", target, id=fam.tag)
            else:
                walk.summary["transient_keys"] += 1
        elif fam.part in ("shares", "recipients"):
            if not has_meta:
                walk.emit("orphan_share", key, f"the {fam.part} of a file that does not exist", target, id=fam.tag)
            else:
                check_share_lists(walk, fam.tag, fam.part)
        elif not (has_meta or has_upload):
            what = "chunk" if fam.part == "chunk" else "chunk table"
            walk.emit("orphan_key", key, f"a {what} of no file or upload", target, id=fam.tag)
        elif fam.part == "chunk" and not extra:
            walk.emit("orphan_key", key, "a chunk that is not in its chunk table", target, id=fam.tag)


def check_chunk_keys(walk: Walk, items: list[tuple[str, Family]]) -> None:
    """Keys in a chunk's own slot: a staging key must expire; a chunk its id's part table names (at its version, in
    the spread layout) is checked with its file or upload; one no record names is a refused or interrupted write (or a
    tus tail's earlier version) that must expire."""
    for (key, fam), (record, layout, ttl) in zip(items, walk.inspect.chunk_keys(items)):
        if ttl == -2:
            continue  # gone since the SCAN
        named = record is not None and layout == keys.SPREAD and keys.chunk_version(record) == fam.version
        if fam.part == "chunk" and named:
            continue
        if not expires(ttl):
            what = "a staging key" if fam.part == "staging" else "a chunk no record names"
            walk.emit("orphan_key", key, f"{what} without TTL", Target("exists", key), id=fam.tag)
        else:
            walk.summary["transient_keys"] += 1


def check_tombstones(walk: Walk, items: list[tuple[str, Family]]) -> None:
    """A deleted id's tombstone: the reconciler's while its owner's due entry for it lasts (it deletes the chunks named)."""
    for (key, fam), (owner, due) in zip(items, walk.inspect.tombstones(items)):
        if due is not None:
            walk.mark_pending(fam.tag, owner, walk.due_state(due) or "leased", [f"{key}: chunks still to delete"])
        else:
            walk.emit(
                "orphan_key", key, "a tombstone its owner's sweep will not look at: its chunks stay", Target("exists", key), id=fam.tag
            )


def check_share_lists(walk: Walk, file_id: str, part: str) -> None:
    key = keys.shares(file_id) if part == "shares" else keys.recipients(file_id)
    for pairs in walk.inspect.list_pairs(key):
        if part == "shares":
            names = [sid for sid, _ in pairs]
            for sid, ok in zip(names, walk.inspect.shares_exist(file_id, names)):
                if not ok:
                    walk.emit("dangling_share_entry", key, f"share {sid} does not exist", Target("exists", key), id=file_id, share_id=sid)
        else:
            names = [row_name(field, value) for field, value in pairs]  # the inbox is the username's
            for user, ok in zip(names, walk.inspect.inboxes_hold(file_id, names)):
                if not ok:
                    walk.emit("recipient_not_in_inbox", key, f"{user}'s inbox lacks the file", Target("exists", key), id=file_id, user=user)


def check_shares(walk: Walk, pairs: list[tuple[str, str]]) -> None:
    found = []
    for (fid, sid), (raw, raw_owner, listed) in zip(pairs, walk.inspect.shares(pairs)):
        share, owner = as_hash(raw), as_text(raw_owner)
        key, target = keys.share(fid, sid), Target("share", (fid, sid))
        if not share:
            continue
        walk.summary["shares"] += 1
        if owner is None:
            walk.emit("orphan_share", key, "a share of a file that does not exist", target, id=fid, user=share.get("owner"), share_id=sid)
            continue
        token = share.get("token_sha256", "")
        if share.get("id") != sid or share.get("file_id") != fid or share.get("owner") != owner or not HEX64.fullmatch(token):
            walk.emit("share_record_invalid", key, "id, file_id, owner or token_sha256 does not match", target, id=fid, user=owner)
            continue
        if not listed:
            walk.emit("share_not_listed", key, "not in the file's shares list", target, id=fid, user=owner, share_id=sid)
        found.append((fid, sid, owner, token))
    for (fid, sid, owner, _), (link, listed_as) in zip(found, walk.inspect.share_indexes(found)):
        key, target = keys.share(fid, sid), Target("share", (fid, sid))
        if as_text(link) != f"{fid}:{sid}":
            walk.emit("share_link_missing", key, f"the token's lookup holds {as_text(link)!r}", target, id=fid, user=owner, share_id=sid)
        if as_text(listed_as) != fid:
            detail = f"{owner}'s links hold {as_text(listed_as)!r}"
            walk.emit("share_not_in_owner_links", key, detail, target, id=fid, user=owner, share_id=sid)


def check_links(walk: Walk, hashes: list[str], counters: list[str]) -> None:
    values = walk.inspect.link_targets(hashes)
    pairs = [(h, (as_text(v) or "").partition(":")) for h, v in zip(hashes, values) if v is not None]
    tokens = walk.inspect.share_tokens([(f, s) for _, (f, _, s) in pairs])
    for (sha, (fid, _, sid)), token in zip(pairs, tokens):
        if as_text(token) != sha:
            detail = f"looks up share {sid} of file {fid}, which is not this token's"
            walk.emit("orphan_link", keys.link(sha), detail, Target("link", sha), id=fid or None, share_id=sid or None)
    for key, ttl in zip(counters, walk.inspect.pttls(counters)):
        if ttl == -1:
            walk.emit("orphan_link", key, "a password counter without TTL", Target("exists", key))
        else:
            walk.summary["transient_keys"] += 1


def check_user_links(walk: Walk, user: str) -> None:
    """A user's links and inbox: entries of shares (files) that are gone are stale (readers drop them)."""
    key = keys.user_links(user)
    for pairs in walk.inspect.list_pairs(key):
        for (sid, fid), (owner, exists) in zip(pairs, walk.inspect.link_entries(pairs)):
            if as_text(owner) != user or not exists:
                detail = f"share {sid} of file {fid} is gone"
                walk.emit("stale_link_entry", key, detail, Target("user", user), id=fid, user=user, share_id=sid)
    key = keys.inbox(user)
    for pairs in walk.inspect.list_pairs(key):
        for (fid, owner), (recipients, meta_owner) in zip(pairs, walk.inspect.inbox_entries(user, pairs)):
            if user not in {row_name(as_text(f) or "", as_text(v) or "") for f, v in recipients.items()} or as_text(meta_owner) != owner:
                detail = f"file {fid} of {owner} is no longer shared with them"
                walk.emit("stale_inbox_entry", key, detail, Target("user", user), id=fid, user=user)
