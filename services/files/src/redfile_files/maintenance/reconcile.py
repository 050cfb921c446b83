"""Making a user's slot agree with the file slots: expiry, quota return, repair after a crash.

An id's ``due`` entry (in its owner's ``files:{u:<user>}:due``) says when to
look at it: an upload's deadline, a file's expiry time, or the end of a lease
taken by an operation that spans slots.  ``reconcile`` reads the id's file slot
in one MULTI and then, compare-and-set on the due score it was given:

=========================  ============================================================
the file slot holds        the user's slot and the global index are set to
=========================  ============================================================
a file of this user        charged its size, in the user's and the global index,
                           due at its expiry (or no due entry)
an upload of this user     reserved at least its bytes (a session's declared size, a
                           seed upload's received bytes), in no index, due at its deadline
nothing (or an expired     nothing: reservation or charge released, out of both
upload or file)            indexes, no due entry -- the id has left nothing behind
=========================  ============================================================

Because every fenced file-slot step lands before its lease ends and a
reconcile acts only after the due time (so after every lease on the id), what
it reads cannot be changed any more by an operation in flight; a newer lease
changes the due score and turns the reconcile's write into a no-op.  An id
whose upload hash is gone also leaves the global set of uploads in progress
(never re-added here: an upload enters it only when it is created), and a
reservation released that way is an upload that expired (counted).

Sweeps run lazily for the requesting user (listing, quota, new uploads), and
in the background: every ``SWEEP_INTERVAL`` seconds (with jitter) each worker
tries the sweep lock; the one that gets it SCANs for users with a due entry
and reconciles what is due, then takes one step of the walk that drops global
index entries of ids that no longer exist.  The lock only saves work; the
reconcile is safe when several run at once.
"""

from __future__ import annotations

import random
import threading
import time

import structlog

from redfile_common.product_metrics import FilesMetrics
from redfile_files.storage.files import FileStore
from redfile_files.storage.ledger import Ledger

log = structlog.get_logger("redfile.files.reconcile")

US = 1_000_000
MAX_ROUNDS = 50  # batches one user's sweep may take in one go


class Reconciler:
    def __init__(self, store: FileStore, ledger: Ledger, *, batch: int, metrics: FilesMetrics | None = None) -> None:
        self.store = store
        self.ledger = ledger
        self.batch = batch
        self.metrics = metrics or FilesMetrics.null()

    def reconcile(self, user: str, file_id: str, expected: int | None) -> bool:
        """Make ``user``'s slot agree with ``file_id``'s file slot; False when a newer lease made it busy."""
        snap = self.store.snapshot(file_id)
        meta, upload = snap.meta, snap.upload
        if upload is None:
            self.ledger.upload_ended(file_id)
        if meta is not None and meta.get("owner") == user:
            self.ledger.index_global(file_id, meta["created_ms"], meta["size"])
            due = meta["expires_ts"] * US if meta["expires_ts"] else None
            return self.ledger.apply(user, file_id, expected=expected, held=f"c:{meta['size']}", index_ms=meta["created_ms"], due_us=due)
        if upload is not None and upload.get("owner") == user:
            if meta is None:
                self.ledger.unindex_global(file_id)
            key = "total_size" if upload.get("mode") == "session" else "received_bytes"
            held = f"r>={int(upload.get(key) or 0)}"
            return self.ledger.apply(user, file_id, expected=expected, held=held, index_ms=None, due_us=int(upload["deadline"]) * US)
        if meta is None and upload is None:
            self.ledger.unindex_global(file_id)
        replaced = self.ledger.apply_from(user, file_id, expected=expected, held=None, index_ms=None, due_us=None)
        if replaced == "r":
            self.metrics.upload_expired(1)
        return replaced is not None

    def sweep_user(self, user: str, rounds: int = 1) -> int:
        """Reconcile what is due for ``user``: up to ``rounds`` batches; returns how many ids."""
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
        done = 0
        for user in self.ledger.users_with_due():
            done += self.sweep_user(user, rounds=MAX_ROUNDS)
        self.ledger.gc_global(self.store.alive, self.batch, sizes=self.store.file_sizes)
        return done


class Sweeper:
    """The background sweep of one worker process, started by its first request."""

    def __init__(self, reconciler: Reconciler, interval: int) -> None:
        self.reconciler = reconciler
        self.interval = interval
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._stop = threading.Event()

    def ensure_started(self) -> None:
        if self.interval <= 0 or self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="redfile-sweeper", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def run_once(self) -> int:
        if not self.reconciler.ledger.try_sweep_lock(self.interval):
            self.count_active_uploads()
            return 0
        done = self.reconciler.sweep_all()
        if done:
            log.info("files_swept", reconciled=done)
        self.count_active_uploads()
        return done

    def count_active_uploads(self) -> None:
        """Every worker sets the gauge (one ZCARD) each round; the metric keeps the latest value."""
        self.reconciler.metrics.set_active_uploads(self.reconciler.ledger.active_uploads())

    def _run(self) -> None:
        while not self._stop.wait(self.interval * random.uniform(0.5, 1.5)):
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as exc:
                log.warning("files_sweep_failed", error_type=type(exc).__name__, seconds=round(time.monotonic() - started, 3))
