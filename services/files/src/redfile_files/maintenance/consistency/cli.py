"""``redfile-check``: the consistency check from a files container or pod, with the files service's environment."""

from __future__ import annotations

import argparse
import json
import sys

from redfile_common.redis_topology import make_redis
from redfile_common.settings import load_settings
from redfile_files.catalogue.reader import Reader
from redfile_files.crypto import Encryption, parse_master_keys
from redfile_files.maintenance.consistency import ConsistencyChecker
from redfile_files.settings import FilesSettings
from redfile_files.storage import Storage, StorageError


def build_checker(settle: float = 1.0) -> ConsistencyChecker:
    """A checker on the settings of the environment, as the files service reads them."""
    settings = load_settings(FilesSettings)
    storage = Storage.open(make_redis(settings), settings)
    reader = Reader(storage.files, Encryption(parse_master_keys(settings.encryption_keys)))  # counts nothing: verifying is not downloading
    return ConsistencyChecker(storage, reader, settle=settle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="redfile-check",
        description="Check the files service's Redis data (read-only unless --repair); prints a JSON report. "
        "Exit status: 0 consistent, 1 problems found (or the walk did not finish), 2 could not run.",
    )
    parser.add_argument(
        "--deep",
        action="store_true",
        help="also read every file's bytes and check them against its CRC32C and composite (and SHA-256, when it has one)",
    )
    parser.add_argument(
        "--repair", action="store_true", help="let the service's own repairs run (reconcile, drop dead index entries), then check again"
    )
    parser.add_argument("--strict", action="store_true", help="stale links/inbox entries fail the check too")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop the walk after this long (the report is then incomplete)")
    parser.add_argument("--settle", type=float, default=1.0, help="seconds before a problem found is looked at again (default 1)")
    parser.add_argument("--summary", action="store_true", help="print the report without the per-user table")
    args = parser.parse_args(argv)
    try:
        checker = build_checker(settle=max(0.0, args.settle))
        report = checker.check(deep=args.deep, repair=args.repair, strict=args.strict, max_seconds=args.max_seconds)
    except (ValueError, StorageError) as exc:  # SettingsError is a ValueError; never print a secret
        print(json.dumps({"ok": False, "error": type(exc).__name__, "message": str(exc)}), file=sys.stderr)
        return 2
    if args.summary:
        report.pop("users", None)
    print(json.dumps(report, indent=2))
    return 0 if report["ok"] else 1
