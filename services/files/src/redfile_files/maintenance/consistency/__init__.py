"""The consistency checker: does the files service's Redis data agree with itself?

Run by operators (``redfile-check``, or ``python -m redfile_files.maintenance.consistency``, in any
files container or pod) and by ``GET /admin/consistency`` through the admin service.  It reads every
``files:*`` key once, by family (``storage.keys``): files and uploads with their chunk tables and
chunks (``files``), the other keys of an id, shares and their indexes (``shares``), each user's
holdings, index and due times, and the global slot (``users``).  A key of no known family, or of
the wrong type, is a problem: the checker fails closed.  docs/operations.md lists every kind of
problem and what to do about it.

**Live traffic.**  A disagreement of an id whose due time has passed (the next sweep repairs it)
or whose due score is a lease (an operation is in flight) is *pending*, not a problem.  Every
problem found is looked at again after ``settle`` seconds and reported only if it is still there.
``stale`` problems (a user's links or inbox entry whose share or file is gone: readers drop those)
fail the check only with ``strict``.  A ``max_seconds`` budget stops the walk early (the report then
says ``complete: false``, and is not ``ok``).  ``repair`` runs only the service's own repairs
(``repair.py``), then checks again.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from redfile_files.catalogue.reader import Reader
from redfile_files.maintenance.consistency.problems import ERROR, KINDS, STALE, Problem
from redfile_files.maintenance.consistency.repair import fixable, run_repairs
from redfile_files.maintenance.consistency.run import execute, report
from redfile_files.maintenance.consistency.walk import Sources, Walk
from redfile_files.storage import Storage
from redfile_files.storage.inspect import SCAN_COUNT


class ConsistencyChecker:
    """``check`` returns the report as a dict; ``reader`` reads files back for ``deep`` (it should count nothing)."""

    def __init__(
        self,
        storage: Storage,
        reader: Reader,
        *,
        settle: float = 1.0,
        scan_count: int = SCAN_COUNT,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.storage = storage
        self.sources = Sources(storage.inspect, reader, scan_count, settle, clock, sleep)

    def check(self, *, deep: bool = False, repair: bool = False, strict: bool = False, max_seconds: float | None = None) -> dict:
        clock = self.sources.clock
        started = clock()
        deadline = None if max_seconds is None else started + max_seconds
        walk = Walk(self.sources, deep=deep, deadline=deadline)
        execute(walk)
        repairs: list[dict] | None = [] if repair else None
        if repair and fixable(walk):
            repairs = run_repairs(walk, self.storage)
            walk = Walk(self.sources, deep=deep, deadline=deadline)
            execute(walk)
        result = report(walk, strict=strict, seconds=clock() - started)
        if repairs is not None:
            result["repairs"] = repairs
        return result


__all__ = ["ERROR", "KINDS", "STALE", "ConsistencyChecker", "Problem"]
