"""The checks of files and uploads: their records, chunk tables and chunks, and what their owners hold for them."""

from __future__ import annotations

import math

from redfile_common.errors import ApiError
from redfile_files.checksums import FileDigest, Part, composite, file_crc32c, part_of
from redfile_files.crypto import SEAL_OVERHEAD, ChunkCorrupt
from redfile_files.maintenance.consistency.problems import Target
from redfile_files.maintenance.consistency.walk import (
    Walk,
    expires,
    first,
    holding,
    meta_problems,
    part_record,
    session_size,
    to_int,
    upload_problems,
)
from redfile_files.records import FileRecord
from redfile_files.storage import keys
from redfile_files.storage.inspect import as_hash, as_text
from redfile_files.storage.keys import UploadMode
from redfile_files.storage.lifecycle import US
from redfile_files.storage.records import ChunkMissing, IndexRow


def check_files(walk: Walk, ids: list[str]) -> None:
    if not ids:
        return
    live = []
    for file_id, (raw, upload, hlen, meta_ttl, parts_ttl) in zip(ids, walk.inspect.files(ids)):
        meta = as_hash(raw)
        if not meta:
            continue  # deleted or expired since the SCAN
        key, target = keys.meta(file_id), Target("file", file_id)
        bad = meta_problems(file_id, meta)
        if bad:
            walk.emit("file_record_incomplete", key, first(bad), target, id=file_id, user=meta.get("owner"))
            continue
        owner, size, expiry = meta["owner"], int(meta["size"]), int(meta.get("expires_ts") or 0)
        walk.summary["files"] += 1
        walk.summary["file_bytes"] += size
        row = walk.user_files.setdefault(owner, [0, 0])
        row[0], row[1] = row[0] + 1, row[1] + size
        if upload:
            walk.emit("file_and_upload", key, "an upload hash exists for this file's id", target, id=file_id, user=owner)
        if not expiry and (expires(meta_ttl) or expires(parts_ttl)):
            walk.emit("key_expiry_wrong", key, "a permanent file's meta or chunk table expires", target, id=file_id, user=owner)
        expiring = check_chunk_table(walk, file_id, meta, hlen or 0, owner)
        if walk.deep:
            verify_bytes(walk, file_id, meta, owner)
        live.append((file_id, owner, size, expiry, expiring, IndexRow.of_meta(meta)))
    looks = walk.inspect.ledger_of([(i, o) for i, o, _, _, _, _ in live], uploads=False)
    entries = walk.inspect.name_entries([(i, o, named.entry(i)) for i, o, _, _, _, named in live])
    for (file_id, owner, size, expiry, expiring, named), (held, indexed, due, gindexed, gsize), index in zip(live, looks, entries):
        issues = index_issues(file_id, size, expiry, named, index)
        if expiring:  # a commit sets its chunks' TTL after the file appears: the reconciler's while it is leased
            issues.append(("key_expiry_wrong", f"chunks of a permanent file expire: {first(expiring)}"))
        if holding(held) != ("c", size):
            issues.append(("file_not_charged", f"held is {as_text(held)!r}, the file's size is {size}"))
        if indexed is None:
            issues.append(("file_not_indexed", "not in its owner's index"))
        if gindexed is None or to_int(gsize) != size:
            issues.append(("file_not_indexed", f"global index: {'in' if gindexed is not None else 'absent'}, size {as_text(gsize)}"))
        if expiry and due is None:
            issues.append(("due_missing", f"expires at {expiry} but has no due entry"))
        walk.settle_issues(file_id, owner, issues, due, expiry * US if expiry else None, Target("file", file_id), keys.meta(file_id))


def index_issues(file_id: str, size: int, expiry: int, row: IndexRow, index: list) -> list[tuple[str, str]]:
    """A file's entries in its owner's name and size indexes, and the row an expiring file keeps."""
    named, sized, rows = index
    issues = []
    if named is None:
        issues.append(("file_not_indexed", f"not in its owner's name index under {row.folder!r} / {row.name!r}"))
    if sized is None or float(sized) != size:
        issues.append(("file_not_indexed", f"size index: {as_text(sized)}, the file's size is {size}"))
    if expiry and row.entry(file_id) not in {r.entry(file_id) for r in IndexRow.of_rows(rows)}:
        issues.append(("file_not_indexed", "an expiring file's row is not kept in its owner's rows"))
    return issues


def check_chunk_table(walk: Walk, file_id: str, meta: dict, hlen: int, owner: str) -> list[int]:
    """A file's chunk table and chunks; the permanent file's chunks that expire (for the caller to weigh)."""
    n, size, chunk = int(meta["total_chunks"]), int(meta["size"]), int(meta.get("chunk_size") or 0)
    sealed, permanent = bool(meta.get("dek")), not int(meta.get("expires_ts") or 0)
    total, found = 0, 0
    parts: list[Part] = []
    missing_part, missing, wrong, uneven, expiring = [], [], [], [], []
    for row in walk.inspect.chunks(file_id, n):
        i, part = row.index, part_record(row.part)
        if part is None:
            missing_part.append(i)
            continue
        found += 1
        total += part.size
        parts.append(part)
        if not row.exists:
            missing.append(i)
        elif row.length != part.size + (SEAL_OVERHEAD if sealed else 0):
            wrong.append(f"{i} ({row.length} bytes stored for {part.size})")
        if chunk and (part.size > chunk or (i < n - 1 and part.size != chunk)):
            uneven.append(i)
        if permanent and row.exists and expires(row.pttl):
            expiring.append(i)
    walk.summary["chunks"] += found
    key, target = keys.meta(file_id), Target("file", file_id)
    if missing_part or hlen != n:
        detail = f"{hlen} parts for {n} chunks; missing or unreadable: {first(missing_part)}"
        walk.emit("chunk_table_mismatch", keys.parts(file_id), detail, target, id=file_id, user=owner)
    if missing:
        walk.emit("chunk_missing", key, f"chunks not stored: {first(missing)}", target, id=file_id, user=owner)
    if wrong or uneven:
        detail = f"lengths: {first(wrong)}; not of chunk_size {chunk}: {first(uneven)}"
        walk.emit("chunk_size_wrong", key, detail, target, id=file_id, user=owner)
    if found == n and total != size:
        walk.emit("size_mismatch", key, f"the parts add up to {total}, the file's size is {size}", target, id=file_id, user=owner)
    for field, compute in (("composite_blake3", composite), ("crc32c", file_crc32c)):
        if found == n and meta.get(field) and meta[field] != compute(parts):
            walk.emit("checksum_record_mismatch", key, f"{field} differs from the chunk table's", target, id=file_id, user=owner)
    return expiring


def verify_bytes(walk: Walk, file_id: str, meta: dict, owner: str) -> None:
    """``deep``: read the file's bytes as a download does and hash them against its checksums."""
    record = FileRecord.from_meta(meta)
    digest = FileDigest() if record.sha256 else None  # SHA-256 only where the file has one
    parts = []
    key, target = keys.meta(file_id), Target("file", file_id)
    try:
        for piece in walk.sources.reader.read_chunks(record, by_chunk=True):  # one piece per chunk, checked against its CRC32C
            parts.append(part_of(piece))
            if digest is not None:
                digest.update(piece)
    except (ChunkMissing, ChunkCorrupt) as exc:
        walk.emit("data_corrupt", key, f"chunk {exc.index}: {type(exc).__name__}", target, id=file_id, user=owner)
        return
    except ApiError as exc:  # the data key does not open
        walk.emit("data_corrupt", key, exc.message or exc.code, target, id=file_id, user=owner)
        return
    walk.summary["bytes_verified"] += record.size
    checks = (
        ("SHA-256", record.sha256, digest.sha256 if digest is not None else ""),
        ("CRC32C", record.crc32c, file_crc32c(parts)),
        ("composite", record.composite_blake3, composite(parts)),
    )
    bad = [name for name, want, have in checks if want and want != have]
    if bad:
        walk.emit("data_corrupt", key, f"the stored bytes do not match the file's {'/'.join(bad)}", target, id=file_id, user=owner)


def check_uploads(walk: Walk, ids: list[str]) -> None:
    if not ids:
        return
    live = []
    for upload_id, (raw, hlen, ttl) in zip(ids, walk.inspect.uploads(ids)):
        u = as_hash(raw)
        if not u:
            continue
        key, target = keys.upload(upload_id), Target("upload", upload_id)
        bad = upload_problems(u)
        if bad:
            walk.emit("upload_record_incomplete", key, first(bad), target, id=upload_id, user=u.get("owner"))
            continue
        owner = u["owner"]
        required = int(u.get("total_size") or 0) if u["mode"] == UploadMode.SESSION else int(u["received_bytes"])
        walk.summary["uploads"] += 1
        row = walk.user_uploads.setdefault(owner, [0, 0])
        row[0], row[1] = row[0] + 1, row[1] + required
        if not expires(ttl):
            walk.emit("key_expiry_wrong", key, "an upload's record never expires", target, id=upload_id, user=owner)
        if check_upload_chunks(walk, upload_id, u, hlen or 0):
            live.append((upload_id, owner, required))
    looks = walk.inspect.ledger_of([(i, o) for i, o, _ in live], uploads=True)
    for (upload_id, owner, required), (held, indexed, due, gindexed, counted) in zip(live, looks):
        h = holding(held)
        issues = []
        if h is None or h[0] != "r" or h[1] < required:
            issues.append(("upload_not_reserved", f"held is {as_text(held)!r}, at least r:{required} expected"))
        if indexed is not None or gindexed is not None:
            issues.append(("upload_indexed", "an upload in progress is in a file index"))
        if due is None:
            issues.append(("due_missing", "no due entry: its reservation would outlive it"))
        if counted is None:
            issues.append(("upload_not_counted", "not in files:{all}:uploads"))
        walk.settle_issues(upload_id, owner, issues, due, None, Target("upload", upload_id), keys.upload(upload_id), whole=True)


def check_upload_chunks(walk: Walk, upload_id: str, u: dict, hlen: int) -> bool:
    """The stored chunks of an upload; False (pending) when the upload changed while it was read."""
    mode, n, received = u["mode"], int(u["total_chunks"]), int(u["received_bytes"])
    chunk, sealed, owner = int(u.get("chunk_size") or 0), bool(u.get("dek")), u["owner"]
    if mode == UploadMode.TUS and chunk:
        n = max(n, math.ceil(received / chunk))
    total = 0
    present: list[int] = []
    missing, wrong, unexpiring, partial = [], [], [], []
    for row in walk.inspect.chunks(upload_id, n):
        i, part = row.index, part_record(row.part)
        if part is None:
            continue
        present.append(i)
        total += part.size
        if not row.exists:
            missing.append(i)
            continue
        if row.length != part.size + (SEAL_OVERHEAD if sealed else 0):
            wrong.append(f"{i} ({row.length} bytes stored for {part.size})")
        elif mode == UploadMode.SESSION and part.size != session_size(u, i):
            wrong.append(f"{i} (size {part.size}, must be {session_size(u, i)})")
        elif mode == UploadMode.TUS and chunk and part.size != chunk:
            partial.append((i, part.size))
        if not expires(row.pttl):
            unexpiring.append(i)
    if walk.inspect.upload_progress(upload_id) != [u["received_bytes"], u.get("updated_at", "")]:
        walk.mark_pending(upload_id, owner, "active", ["the upload changed while it was read"])
        return False
    # a tus upload's chunks are full but its tail (the last one stored)
    wrong += [f"{i} (size {size}: only the tail may be shorter than {chunk})" for i, size in partial if i != present[-1]]
    walk.summary["chunks"] += len(present)
    key, target = keys.upload(upload_id), Target("upload", upload_id)
    if hlen != len(present) or (mode == UploadMode.TUS and present != list(range(len(present)))):
        detail = f"{hlen} parts, {len(present)} of them at indices 0..{n - 1}"
        detail += " (a tus upload's chunks must be contiguous)" if mode == UploadMode.TUS else ""
        walk.emit("chunk_table_mismatch", keys.parts(upload_id), detail, target, id=upload_id, user=owner)
    if missing:
        walk.emit("chunk_missing", key, f"chunks not stored: {first(missing)}", target, id=upload_id, user=owner)
    if wrong:
        walk.emit("chunk_size_wrong", key, f"chunks: {first(wrong)}", target, id=upload_id, user=owner)
    if total != received:
        walk.emit("size_mismatch", key, f"the parts add up to {total}, received_bytes is {received}", target, id=upload_id, user=owner)
    if unexpiring:
        walk.emit("key_expiry_wrong", key, f"chunks of an upload never expire: {first(unexpiring)}", target, id=upload_id, user=owner)
    return True
