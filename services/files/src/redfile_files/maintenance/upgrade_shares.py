"""Convert the named shares stored before account ids into shares with the account: the upgrade step.

    redfile-upgrade-shares [--dry-run] [--batch N] [--pause S]
    python -m redfile_files.maintenance.upgrade_shares ...

Run it once every files replica runs a release with account ids, where the files service runs
(``kubectl exec deploy/redfile-files -- redfile-upgrade-shares``), with the files service's
environment: ``REDIS_URL`` (the files ACL user is enough), ``AUTH_URL`` and ``SERVICE_KEYRING`` (it asks
auth who each name is, as sharing does).  docs/operations.md ("Upgrading") has the procedure.

It SCANs every ``files:{<id>}:recipients`` hash (a page at a time: bounded memory, never ``KEYS``)
for name rows (``storage.recipient_rows``: username -> created_at), asks auth once per name who holds
it now, and in the file's slot replaces the row, only if it still holds what was read, by that
account's row (account id -> username), with the file in that username's inbox (written first, as
every share does; an entry under the name as it was typed is moved).  A name auth does not know is
a share with nobody: the row and its inbox entry are dropped, and the report names them.

It is **idempotent** (an account row is never touched: a second run finds nothing), **safe next
to live traffic** (each row changes only if nobody changed it since it was read; readers take a
name row as a share with the name's account until it is converted), and leaves a row as it is when
auth cannot answer (``unresolved``: run it again).  The summary (JSON, on stdout) counts what was
converted and dropped and lists the drops; exit status 0 when nothing is left to convert, 1 when
something is (``unresolved``: auth was not reachable, say), 2 when the settings or Redis are not usable.  ``--dry-run``
writes nothing and reports what it would do.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

from redfile_common.errors import ApiError
from redfile_files.maintenance.walk_cli import DEFAULT_BATCH, run_walk, walk_parser
from redfile_files.sharing.directory import Account, Directory
from redfile_files.storage.recipient_rows import legacy_name
from redfile_files.storage.shares import ShareStore

MAX_LISTED = 100  # drops and unresolved names listed in a report


@dataclass
class UpgradeReport:
    dry_run: bool = False
    scanned: int = 0  # recipients hashes looked at
    name_rows: int = 0  # name rows found
    converted: int = 0  # made account rows (with --dry-run: would be)
    dropped: int = 0  # names auth does not know: the share removed (with --dry-run: would be)
    changed: int = 0  # changed by someone else between the read and the write: theirs stands
    orphaned: int = 0  # rows of a file that does not exist (the consistency check's ``orphan_share``)
    unresolved: int = 0  # auth could not answer for the name: left as it is
    dropped_shares: list[dict] = field(default_factory=list)  # {"file_id", "username"}
    unresolved_names: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.unresolved == 0

    def to_dict(self) -> dict:
        return asdict(self) | {"complete": self.complete}


class ShareUpgrade:
    def __init__(
        self,
        store: ShareStore,
        directory: Directory,
        *,
        batch: int = DEFAULT_BATCH,
        pause: float = 0.0,
        progress: Callable[[dict], None] | None = None,
    ) -> None:
        self.store = store
        self.directory = directory
        self.batch = batch
        self.pause = pause
        self.progress = progress or (lambda line: None)
        self.accounts: dict[str, Account | None] = {}  # each name asked of auth once per run

    def run(self, *, dry_run: bool = False) -> UpgradeReport:
        report = UpgradeReport(dry_run=dry_run)
        for file_id in self.store.files_with_recipients(self.batch):  # one SCAN walk (of every primary on a cluster)
            report.scanned += 1
            self._file(file_id, report, dry_run=dry_run)
            if report.scanned % self.batch == 0:
                self._report(report, done=False)
                if self.pause:
                    time.sleep(self.pause)
        self._report(report, done=True)
        return report

    def _report(self, report: UpgradeReport, *, done: bool) -> None:
        self.progress({"done": done, "scanned": report.scanned, "converted": report.converted, "dropped": report.dropped})

    def _file(self, file_id: str, report: UpgradeReport, *, dry_run: bool) -> None:
        rows = [(f, v, name) for f, v in self.store.rows(file_id).items() if (name := legacy_name(f, v))]
        if not rows:
            return
        report.name_rows += len(rows)
        owner = self.store.file_owner(file_id)
        if owner is None:
            report.orphaned += len(rows)
            return
        for field_, value, name in rows:
            try:
                account = self._account(name)
            except ApiError:
                report.unresolved += 1
                if name not in report.unresolved_names and len(report.unresolved_names) < MAX_LISTED:
                    report.unresolved_names.append(name)
                continue
            if dry_run:
                report.converted += account is not None
                report.dropped += account is None
                continue
            self._convert(file_id, owner, field_, value, name, account, report)

    def _convert(
        self, file_id: str, owner: str, field_: str, value: str, name: str, account: Account | None, report: UpgradeReport
    ) -> None:
        if account is not None:
            self.store.index_inbox(account.username, file_id, owner)  # the index first, as every share writes it
        state = self.store.convert_name_row(file_id, field_, value, account.id if account else "", account.username if account else name)
        if state != "ok":
            report.changed += 1
            return
        if account is None or field_ != account.username:
            self.store.unindex_inbox(field_, file_id)
        if account is not None:
            report.converted += 1
            return
        report.dropped += 1
        if len(report.dropped_shares) < MAX_LISTED:
            report.dropped_shares.append({"file_id": file_id, "username": name})

    def _account(self, name: str) -> Account | None:
        if name not in self.accounts:
            self.accounts[name] = self.directory.lookup(name)
        return self.accounts[name]


def main(argv: list[str] | None = None) -> int:
    args = walk_parser(
        "redfile-upgrade-shares",
        "Convert named shares stored before account ids into shares with the account "
        "(run once every files replica runs a release with account ids; see docs/operations.md).",
        "count what would be converted and dropped; write nothing",
    ).parse_args(argv)

    from redfile_common.service_client import ServiceClient
    from redfile_common.tokens import Keyring, ServiceTokens

    def service_tokens(settings) -> ServiceTokens:
        return ServiceTokens(Keyring(settings.service_keyring), service_name=settings.service_name, ttl=settings.service_token_ttl)

    def upgrade(client, settings, tokens: ServiceTokens, progress) -> UpgradeReport:
        services = ServiceClient(tokens, {"auth": settings.service_url("auth")}, timeout=settings.service_timeout)
        store = ShareStore(client, password_window=settings.share_password_window)
        upgrade = ShareUpgrade(store, Directory(services), batch=max(1, args.batch), pause=max(0.0, args.pause), progress=progress)
        return upgrade.run(dry_run=args.dry_run)

    return run_walk(args, service_tokens, upgrade, last_line=lambda line: line["done"])


if __name__ == "__main__":
    sys.exit(main())
