"""The upload lifecycle: every step that spans an id's slot and its owner's, in the one order that is safe.

Seed uploads, sessions, tus and one-request files all go through these: ``open`` (or
``open_with_chunk``), ``put`` / ``append`` (``growing`` when bytes are reserved as they come),
``commit``, ``discard``, ``delete``.  A new way to upload gets the quota protocol by calling them.

The protocol.  A file exists iff its ``meta`` exists, an upload iff its ``upload`` hash does; ids
are random and never reused.  The owner's holdings, indexes and due times and the global index are
derived from that truth, and no script spans two slots.  So each operation:

* steps in the owner's slot *before* the file slot when acquiring (reserve, then create the upload;
  charge and index, then commit) and *after* it when releasing (remove, then unindex and release):
  a crash in between over-counts a quota, never under-counts it, and leaves index entries that
  readers skip;
* first takes a **lease** (the id's due time := now + 120 s), and its file-slot step is **fenced**:
  refused (``Late``, nothing changes) after now + 60 s by Redis's clock;
* ends by setting the id's holding, index entry and due time, unless a newer lease took over.

``reconcile`` acts on an id only once its due time has passed (so after every lease on it): it reads
the file slot in one MULTI and makes the owner's slot and the global index agree with it.

==============  ===============================================  ============================
operation       steps (slot)                                     a crash after step k leaves
==============  ===============================================  ============================
open            1 reserve + lease (user)  1b count it in         1-1b: a reservation (and a
                progress (all)  2 create the upload, fenced      count), released at the
                (file)  3 due := deadline (user)                 lease's end; 2: an upload
commit          1 charge + index + lease (user)  2 global        1-2: a charge and index
                index (all)  2b hold the chunks (chunk slots)    entries, reverted at the
                3 commit, fenced (file)  3a the chunks' TTL      lease's end; 3: the file
                (chunk slots)  3b no longer in progress (all)    (its chunks' TTL set then)
                4 due := expiry
discard/delete  1 lease, a file's names entry in flight (user)   2-3: a holding and index
                2 remove, fenced, leaving a tombstone (file)     entries of a gone id (and
                2b delete its chunks, then it (chunk slots)      its chunks), released (and
                3 unindex, no longer in progress (all)           deleted) at the lease's end
                4 release, unindex (user)
move            0 read meta  1 lease, the old and new names      1-2: the file under both
                entries in flight (user)  2 name, folder,        entries; the one its meta
                fenced (file)  3 the other entry goes (user)     does not show goes at the
                                                                 lease's end
==============  ===============================================  ============================
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from redfile_common.errors import ApiError
from redfile_common.product_metrics import FilesMetrics
from redfile_files.checksums import Part
from redfile_files.records import FileRecord
from redfile_files.storage.files import Changed, FileStore, Late
from redfile_files.storage.ledger import Ledger
from redfile_files.storage.records import Appended, Charged, ChunkWrite, IndexRow, Lease, NewUpload, Reserved, Segment, too_late
from redfile_files.storage.staged import StagedChunk
from redfile_files.storage.tus import TusStore

US = 1_000_000
MAX_ROUNDS = 50  # batches one user's sweep may take in one go
CHANGE_TRIES = 5  # a delete or rename that finds the file renamed under it reads it again this often


def _changing() -> ApiError:
    return ApiError("conflict", "The file kept changing while this ran; try again.")


@dataclass
class Grant:
    """Bytes reserved for an upload by ``Lifecycle.growing``: given back at the end unless ``kept``."""

    bytes: int
    kept: bool = False


class Lifecycle:
    """The upload lifecycle and its reconciler (see the module docstring)."""

    def __init__(
        self,
        files: FileStore,
        ledger: Ledger,
        tus: TusStore,
        *,
        batch: int,
        metrics: FilesMetrics | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.files = files
        self.ledger = ledger
        self.tus = tus
        self.batch = batch
        self.metrics = metrics or FilesMetrics.null()
        self.clock = clock

    # -- opening -----------------------------------------------------------------------
    def open(self, owner: str, upload_id: str, upload: NewUpload, *, reserve: int) -> int:
        """Reserve ``reserve`` bytes, then create the upload; its deadline (unix s)."""
        lease = self._reserve_new(owner, upload_id, reserve)
        try:
            deadline = self.files.create_upload(upload_id, upload, not_after_us=lease.fence)
        except Late:
            raise too_late() from None
        self._settle(owner, upload_id, lease, Reserved(reserve), None, deadline * US)
        return deadline

    def open_with_chunk(self, owner: str, upload_id: str, upload: NewUpload, *, index: int, data, part: Part, now_iso: str) -> ChunkWrite:
        """A seed upload: reserve its first chunk's bytes, then create it with that chunk."""
        lease = self._reserve_new(owner, upload_id, part.size)
        try:
            write = self.files.put_chunk(
                upload_id,
                owner=owner,
                index=index,
                data=data,
                part=part,
                now_iso=now_iso,
                total_chunks=upload.total_chunks,
                create=upload,
                not_after_us=lease.fence,
            )
        except Late:
            raise too_late() from None
        self._settle(owner, upload_id, lease, Reserved(part.size), None, write.deadline * US)
        return write

    def _reserve_new(self, owner: str, upload_id: str, size: int) -> Lease:
        lease = self._reserve(owner, upload_id, size, new=True, lease=True)
        assert lease is not None
        self.ledger.upload_started(upload_id, int(self.clock() * 1000))
        return lease

    # -- bytes ------------------------------------------------------------------------------
    @contextmanager
    def growing(self, owner: str, upload_id: str, size: int) -> Iterator[Grant]:
        """Reserve ``size`` more bytes for an upload whose bytes count as they come; given back on an
        exception, or at the end unless the caller marks the grant ``kept``."""
        self._reserve(owner, upload_id, size, new=False)
        grant = Grant(size)
        try:
            yield grant
        except BaseException:
            self.ledger.shrink(owner, upload_id, size)
            raise
        if not grant.kept:
            self.ledger.shrink(owner, upload_id, size)

    def put(
        self,
        owner: str,
        upload_id: str,
        *,
        index: int,
        data,
        part: Part,
        now_iso: str,
        grow: bool = False,
        total_chunks: int | None = None,
        staged: StagedChunk | None = None,
    ) -> ChunkWrite:
        """Store one chunk (``FileStore.put_chunk``); with ``grow``, its bytes are reserved first and given back
        unless they were newly stored."""
        write = self.files.put_chunk
        if not grow:
            return write(
                upload_id, owner=owner, index=index, data=data, part=part, now_iso=now_iso, total_chunks=total_chunks, staged=staged
            )
        with self.growing(owner, upload_id, part.size) as grant:
            done = write(
                upload_id, owner=owner, index=index, data=data, part=part, now_iso=now_iso, total_chunks=total_chunks, staged=staged
            )
            grant.kept = done.stored
        return done

    def append(
        self,
        upload_id: str,
        *,
        owner: str,
        expected: int,
        new_offset: int,
        segments: list[Segment],
        now_iso: str,
        length: int | None = None,
        allow_final: bool = False,
        staged: StagedChunk | None = None,
        grow: int = 0,
    ) -> Appended:
        """A tus append (``TusStore.append``); ``grow`` bytes are reserved first (a deferred length) and given
        back if it is refused."""

        def send() -> Appended:
            return self.tus.append(
                upload_id,
                owner=owner,
                expected=expected,
                new_offset=new_offset,
                segments=segments,
                now_iso=now_iso,
                length=length,
                allow_final=allow_final,
                staged=staged,
            )

        if not grow:
            return send()
        with self.growing(owner, upload_id, grow) as grant:
            done = send()
            grant.kept = True
        return done

    # -- finishing ---------------------------------------------------------------------------
    def commit(self, record: FileRecord) -> None:
        """Charge the file's size (its reservation goes), index it, and turn its upload into the file."""
        owner, file_id, size = record.owner, record.id, record.size
        row = IndexRow(record.folder, record.name)
        lease = self._charge(owner, file_id, size, record.created_ms, row)
        self.ledger.index_global(file_id, record.created_ms, size)
        try:
            self.files.commit(
                file_id,
                owner=owner,
                total_chunks=record.total_chunks,
                size=size,
                meta=record.to_meta(),
                expires_ts=record.expires_ts or None,
                not_after_us=lease.fence,
            )
        except Late:
            raise too_late() from None
        self.ledger.upload_ended(file_id)
        due = record.expires_ts * US if record.expires_ts else None
        self._settle(owner, file_id, lease, Charged(size), record.created_ms, due, row)

    def discard(self, owner: str, upload_id: str) -> None:
        """Remove an upload and every chunk of it; its reserved bytes return to the owner's quota."""
        lease = self.ledger.lease(owner, upload_id)
        try:
            self.files.abort(upload_id, owner=owner, not_after_us=lease.fence)
        except Late:
            raise too_late() from None
        except ApiError:
            # A concurrent abort or complete got there first, and its last step may have yielded to our
            # newer lease: settle the id now, as the sweep would when our lease ends (a gone upload stays gone).
            self.reconcile(owner, upload_id, lease.score)
            raise
        self.files.reclaim(upload_id)  # its chunks; should this fail, the sweep does it at the lease's end
        self.ledger.unindex_global(upload_id)
        self.ledger.upload_ended(upload_id)
        self._settle(owner, upload_id, lease, None, None, None)

    def delete(self, owner: str, file_id: str) -> bool:
        """Remove a file and its chunks, unindex it, release its bytes; False when it was not (any more) there.

        Its names entry is recorded in flight first, and the file slot's step runs only while the file is still
        under that entry (a rename in between: read it again, at most ``CHANGE_TRIES`` times)."""
        for _ in range(CHANGE_TRIES):
            meta = self.files.get_meta(file_id)
            row = IndexRow.of_meta(meta) if meta is not None and meta.get("owner") == owner else None
            lease = self.ledger.lease(owner, file_id, (row,) if row else ())
            try:
                gone = self.files.delete_file(
                    file_id, not_after_us=lease.fence, only_owner=owner, expect=(row.folder, row.name) if row else None
                )
            except Late:
                raise too_late() from None
            except Changed:
                continue
            if gone is None:
                # Another delete (or the expiry) got there first: settle the id now (a gone id stays gone).
                self.reconcile(owner, file_id, lease.score)
                return False
            self.files.reclaim(file_id)  # its chunks; should this fail, the sweep does it at the lease's end
            self.ledger.unindex_global(file_id)
            self._settle(owner, file_id, lease, None, None, None)
            return True
        raise _changing()

    def move(self, owner: str, file_id: str, *, name: str | None, folder: str | None, now_iso: str) -> bool:
        """Rename and/or move ``owner``'s file: its new names entry is written (with the old one, both in flight)
        before the file slot changes, fenced and only while the file is still under the old one (else read again, at
        most ``CHANGE_TRIES`` times), and the old one goes after; False when it is not (any more) there."""
        for _ in range(CHANGE_TRIES):
            meta = self.files.get_meta(file_id)
            if meta is None or meta.get("owner") != owner:
                return False
            old = IndexRow.of_meta(meta)
            new = IndexRow(old.folder if folder is None else folder, old.name if name is None else name)
            lease = self.ledger.lease(owner, file_id, (old, new))
            fields = {"name": new.name, "folder": new.folder, "updated_at": now_iso}
            try:
                done = self.files.rename(file_id, fields, not_after_us=lease.fence, expect=(old.folder, old.name))
            except Late:
                raise too_late() from None
            except Changed:
                continue
            if not done:
                self.reconcile(owner, file_id, lease.score)  # gone meanwhile: settle the id now (a gone id stays gone)
                return False
            due = meta["expires_ts"] * US if meta["expires_ts"] else None
            self._settle(owner, file_id, lease, Charged(meta["size"]), meta["created_ms"], due, new)
            return True
        raise _changing()

    def adopt(self, owner: str, file_id: str, row: IndexRow) -> bool:
        """Settle a names entry no operation recorded (the consistency checker's repair): record it in flight under a
        lease, then reconcile the id at once, which keeps it only if the file's ``meta`` confirms it."""
        lease = self.ledger.lease(owner, file_id, (row,))
        return self.reconcile(owner, file_id, lease.score)

    def _settle(
        self, owner: str, file_id: str, lease: Lease, holding, index_ms: int | None, due_us: int | None, row: IndexRow | None = None
    ) -> None:
        """The last step of an operation: set the final state, unless a newer lease took over."""
        self.ledger.apply(owner, file_id, expected=lease.score, holding=holding, index_ms=index_ms, due_us=due_us, row=row)

    def _reserve(self, owner: str, upload_id: str, size: int, **kwargs) -> Lease | None:
        try:
            return self.ledger.reserve(owner, upload_id, size, **kwargs)
        except ApiError as exc:
            if exc.code == "quota_exceeded":
                self.metrics.quota_rejection()
            raise

    def _charge(self, owner: str, upload_id: str, size: int, created_ms: int, row: IndexRow) -> Lease:
        try:
            return self.ledger.charge(owner, upload_id, size, created_ms, row)
        except ApiError as exc:
            if exc.code == "quota_exceeded":
                self.metrics.quota_rejection()
            raise

    # -- the reconciler -------------------------------------------------------------------------
    def reconcile(self, user: str, file_id: str, expected: int | None) -> bool:
        """Make ``user``'s slot and the global index agree with ``file_id``'s file slot; False when a newer lease made
        it busy.  A file of the user: charged its size, indexed, due at its expiry.  An upload of the user:
        reserved at least its bytes, unindexed, due at its deadline.  Nothing: released, unindexed, no due
        entry (a reservation released so is an upload that expired: counted).  The chunks follow the
        file slot too: a file's get its TTL (a commit interrupted before it set them), and a gone id's
        tombstone has its chunks deleted (an abort or delete interrupted before it did)."""
        snap = self.files.snapshot(file_id)
        meta, upload = snap.meta, snap.upload
        if upload is None:
            self.ledger.upload_ended(file_id)
        if meta is not None:
            self.files.settle_chunks(file_id, meta)
        elif upload is None:
            self.files.reclaim(file_id)
        if meta is not None and meta.get("owner") == user:
            self.ledger.index_global(file_id, meta["created_ms"], meta["size"])
            due = meta["expires_ts"] * US if meta["expires_ts"] else None
            done = self.ledger.apply(
                user,
                file_id,
                expected=expected,
                holding=Charged(meta["size"]),
                index_ms=meta["created_ms"],
                due_us=due,
                row=IndexRow.of_meta(meta),
            )
            return done is not None
        if upload is not None and upload.owner == user:
            if meta is None:
                self.ledger.unindex_global(file_id)
            done = self.ledger.apply(
                user, file_id, expected=expected, holding=Reserved(upload.reserves()), index_ms=None, due_us=upload.deadline * US
            )
            return done is not None
        if meta is None and upload is None:
            self.ledger.unindex_global(file_id)
        replaced = self.ledger.apply(user, file_id, expected=expected, holding=None, index_ms=None, due_us=None)
        if replaced == "r":
            self.metrics.upload_expired(1)
        return replaced is not None

    def sweep_user(self, user: str, rounds: int = 1) -> int:
        """Reconcile what is due for ``user``: up to ``rounds`` batches; how many ids."""
        done = 0
        for _ in range(rounds):
            due = self.ledger.due(user, self.batch)
            for file_id, score in due:
                self.reconcile(user, file_id, score)
            done += len(due)
            if len(due) < self.batch:
                break
        return done

    def sweep_all(self) -> int:
        """Reconcile what is due for every user, then one step of the walk over the global index."""
        done = 0
        for user in self.ledger.users_with_due():
            done += self.sweep_user(user, rounds=MAX_ROUNDS)
        self.ledger.gc_global(self.files.alive, self.batch)
        return done
