"""Re-wrap every file's data key under the current master key: the step that lets an old key go.

    redfile-rekey [--dry-run] [--cursor N] [--batch N] [--max-passes N] [--pause S]
    python -m redfile_files.maintenance.rekey ...

Run it where the files service runs (``kubectl exec deploy/redfile-files -- redfile-rekey``),
with the files service's environment: ``REDIS_URL`` (and ``REDIS_USERNAME`` /
``REDIS_PASSWORD``: the files ACL user is enough) and the new ``ENCRYPTION_KEYS``,
the new key first and every old one after it.  docs/operations.md ("Rotating keys")
has the whole procedure; in short, only once *every* replica wraps with the new key:

It walks every file's and upload's wrapped data key (``storage.datakeys``: SCAN a page at a time);
a data key wrapped by an old master key is opened with that key and wrapped again by the first
one (the data key itself stays the same, so no chunk is read or rewritten, only these ~90 bytes),
and written back with a compare-and-set: a file deleted (or an upload completed or aborted) in
between is left alone, and a concurrent rename or chunk is kept.  It passes again while a pass
re-wrapped anything: an upload completed during a pass has its (already re-wrapped) key copied
into its new ``meta`` by the commit script, which a later pass checks.

It is **idempotent** (a key wrapped by the current master key is skipped, by its
``kid`` prefix, without any crypto), **resumable** (each progress line on stderr --
at most one a second -- carries the SCAN cursor: ``--cursor`` starts there; starting
again from 0 is always correct, just longer) and safe next to live traffic.  The summary (JSON, on
stdout) counts what was re-wrapped, what was already current, what vanished while
it ran, what cannot be opened with any configured key (``failed``, with ids), and
what still ``remaining`` is wrapped by another key: when that is 0 (exit status 0)
the old key can be removed from ``ENCRYPTION_KEYS``.  Exit status 1: something
remains or failed; 2: the settings or Redis are not usable.  ``--dry-run`` writes
nothing and answers the same question (status 0: no data key needs an old key).

"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from redfile_files.crypto import ChunkCorrupt, Encryption, parse_master_keys, wrapping_kid
from redfile_files.maintenance.walk_cli import DEFAULT_BATCH, run_walk, walk_parser
from redfile_files.storage.datakeys import DataKey, DataKeys

MAX_LISTED = 100  # ids of unopenable keys named in a report


@dataclass
class PassCounts:
    """One walk over the key space."""

    scanned: int = 0  # file and upload hashes looked at
    current: int = 0  # already wrapped by the current master key (after this pass)
    rewrapped: int = 0
    unencrypted: int = 0  # stored before encryption was switched on: nothing to re-wrap
    gone: int = 0  # deleted (or completed, aborted) between the read and the write
    failed: int = 0  # wrapped by a key that is not configured, or that does not open
    remaining: int = 0  # still wrapped by another key after this pass
    by_key: dict[str, int] = field(default_factory=dict)  # master key id -> data keys it wraps (after this pass)


@dataclass
class RekeyReport:
    current_key: str
    dry_run: bool
    passes: int = 0
    rewrapped: int = 0  # over every pass
    gone: int = 0
    # the state found by the last pass:
    scanned: int = 0
    current: int = 0
    unencrypted: int = 0
    failed: int = 0
    remaining: int = 0
    by_key: dict[str, int] = field(default_factory=dict)
    failed_ids: list[str] = field(default_factory=list)
    complete: bool = False  # every data key found is wrapped by the current master key (remaining == 0)

    def to_dict(self) -> dict:
        return asdict(self)


class Rekeyer:
    """Re-wraps data keys in Redis; see the module docstring for the contract."""

    def __init__(
        self,
        keys: DataKeys,
        encryption: Encryption,
        *,
        batch: int = DEFAULT_BATCH,
        pause: float = 0.0,
        progress: Callable[[dict], None] | None = None,
    ) -> None:
        if not encryption.enabled:
            raise ValueError("ENCRYPTION_KEYS is empty: there is no master key to re-wrap with")
        self.keys = keys
        self.encryption = encryption
        self.current_kid = encryption.current.kid  # type: ignore[union-attr]
        self.batch = batch
        self.pause = pause
        self.progress = progress

    def run(self, *, dry_run: bool = False, cursor: int = 0, max_passes: int = 3) -> RekeyReport:
        """Pass over every file and upload until a pass has nothing left to re-wrap (at most ``max_passes``).

        ``cursor`` resumes an interrupted run's first pass where it stopped;
        another full pass always follows such a partial one.  ``dry_run``
        counts without writing.
        """
        report = RekeyReport(current_key=self.current_kid, dry_run=dry_run)
        last: PassCounts | None = None
        for number in range(1, max(1, max_passes) + 1):
            partial = number == 1 and cursor != 0
            last = self._pass(cursor if number == 1 else 0, write=not dry_run, report=report)
            report.passes = number
            if dry_run and not partial:
                break
            if not partial and last.rewrapped == 0:
                break  # a full pass found nothing to do: it checked everything
        else:
            # the last pass still re-wrapped something: count what is left, writing nothing
            last = self._pass(0, write=False, report=report)
        assert last is not None
        report.scanned, report.current, report.unencrypted = last.scanned, last.current, last.unencrypted
        report.failed, report.remaining, report.by_key = last.failed, last.remaining, dict(sorted(last.by_key.items()))
        report.complete = last.remaining == 0
        return report

    # -- one pass ----------------------------------------------------------------
    def _pass(self, cursor: int, *, write: bool, report: RekeyReport) -> PassCounts:
        counts = PassCounts()
        failed_ids: list[str] = []
        for pages, page in enumerate(self.keys.pages(cursor, self.batch), start=1):
            for found in page.keys:
                self._one(found, write=write, counts=counts, failed_ids=failed_ids)
            if self.progress is not None:
                self.progress({"event": "rekey_progress", "cursor": page.cursor, "pages": pages, "write": write, **asdict(counts)})
            if self.pause and page.cursor != 0:
                time.sleep(self.pause)
        if write:
            report.rewrapped += counts.rewrapped
            report.gone += counts.gone
        report.failed_ids = failed_ids[:MAX_LISTED]
        return counts

    def _one(self, found: DataKey, *, write: bool, counts: PassCounts, failed_ids: list[str]) -> None:
        if found.wrapped is None:  # gone since SCAN saw it (or a hash without a data key field)
            return
        counts.scanned += 1
        key, wrapped, file_id = found.key, found.wrapped, found.file_id
        if not wrapped:
            counts.unencrypted += 1
            return
        for _ in range(3):  # "changed": someone else (another run) re-wrapped it first; look again
            kid = wrapping_kid(wrapped)
            if kid == self.current_kid:
                counts.current += 1
                counts.by_key[kid] = counts.by_key.get(kid, 0) + 1
                return
            if not write:
                break
            try:
                new = self.encryption.rewrap(file_id, wrapped)
            except ChunkCorrupt:
                break
            status = self.keys.swap(key, wrapped, new)
            if status == "ok":
                counts.rewrapped += 1
                counts.current += 1
                counts.by_key[self.current_kid] = counts.by_key.get(self.current_kid, 0) + 1
                return
            if status == "gone":
                counts.gone += 1
                counts.scanned -= 1
                return
            again = self.keys.read(key)
            if again is None:
                counts.gone += 1
                counts.scanned -= 1
                return
            wrapped = again
        # still wrapped by another key: not written (dry run), or it does not open
        kid = wrapping_kid(wrapped)
        counts.remaining += 1
        counts.by_key[kid] = counts.by_key.get(kid, 0) + 1
        try:
            self.encryption.unwrap(file_id, wrapped)
        except ChunkCorrupt:
            counts.failed += 1
            failed_ids.append(file_id)


def main(argv: list[str] | None = None) -> int:
    def cursor(parser) -> None:
        parser.add_argument("--cursor", type=int, default=0, help="resume the first pass at this SCAN cursor (from a progress line)")

    def max_passes(parser) -> None:
        parser.add_argument("--max-passes", type=int, default=3, help="passes while something is still re-wrapped (default %(default)s)")

    args = walk_parser(
        "redfile-rekey",
        "Re-wrap every file's data key under the first key of ENCRYPTION_KEYS "
        "(run after every files replica has the new key first; see docs/operations.md).",
        "count data keys per master key; write nothing",
        first=cursor,
        after_batch=max_passes,
    ).parse_args(argv)

    def master_keys(settings) -> list:
        keys = parse_master_keys(settings.encryption_keys)
        if not keys:
            raise ValueError("ENCRYPTION_KEYS is empty: nothing to re-wrap with")
        return keys

    def rekey(client, settings, keys: list, progress) -> RekeyReport:
        rekeyer = Rekeyer(DataKeys(client), Encryption(keys), batch=max(1, args.batch), pause=max(0.0, args.pause), progress=progress)
        return rekeyer.run(dry_run=args.dry_run, cursor=args.cursor, max_passes=args.max_passes)

    # the last line of each pass is printed too (its cursor is 0)
    return run_walk(args, master_keys, rekey, last_line=lambda line: line["cursor"] == 0)


if __name__ == "__main__":
    sys.exit(main())
