"""The background sweep of one worker process (``Lifecycle.sweep_all``), started by its first request.

Every ``SWEEP_INTERVAL`` seconds (jittered) each worker tries the sweep lock; the one that gets
it reconciles what is due for every user and takes one step of the walk over the global index.
The lock only saves work: reconciling is safe when several run at once.  Every worker sets the
active-uploads gauge each round.
"""

from __future__ import annotations

import random
import threading
import time

import structlog

from redfile_common.product_metrics import FilesMetrics
from redfile_files.storage.ledger import Ledger
from redfile_files.storage.lifecycle import Lifecycle

log = structlog.get_logger("redfile.files.reconcile")


class Sweeper:
    def __init__(self, lifecycle: Lifecycle, ledger: Ledger, interval: int, metrics: FilesMetrics | None = None) -> None:
        self.lifecycle = lifecycle
        self.ledger = ledger
        self.interval = interval
        self.metrics = metrics or FilesMetrics.null()
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
        if not self.ledger.try_sweep_lock(self.interval):
            self.count_active_uploads()
            return 0
        done = self.lifecycle.sweep_all()
        if done:
            log.info("files_swept", reconciled=done)
        self.count_active_uploads()
        return done

    def count_active_uploads(self) -> None:
        """One ZCARD; the gauge keeps the latest value any worker set."""
        self.metrics.set_active_uploads(self.ledger.active_uploads())

    def _run(self) -> None:
        while not self._stop.wait(self.interval * random.uniform(0.5, 1.5)):
            started = time.monotonic()
            try:
                self.run_once()
            except Exception as exc:  # the next round tries again
                log.warning("files_sweep_failed", error_type=type(exc).__name__, seconds=round(time.monotonic() - started, 3))
