"""What ``redfile-rekey`` and ``redfile-upgrade-shares`` share as commands: each walks the files service's keys
with SCAN, writing (or with ``--dry-run`` counting) as it goes, run where the files service runs with its
environment.

Both take ``--dry-run``, ``--batch`` (keys per SCAN step), ``--pause`` (seconds between steps) and
``--quiet`` (no progress lines); print progress on stderr as JSON lines, at most one a second and
the last of a walk; print the report (JSON) on stdout; and exit 0 when the report is complete, 1 when it
is not, 2 when the settings or Redis are not usable (a JSON error on stderr, never a secret).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from redfile_files.storage import StorageError

if TYPE_CHECKING:
    import redis

    from redfile_files.settings import FilesSettings

DEFAULT_BATCH = 500

Prepared = TypeVar("Prepared")
Progress = Callable[[dict], None]


class Report(Protocol):
    @property
    def complete(self) -> bool: ...

    def to_dict(self) -> dict: ...


Options = Callable[[argparse.ArgumentParser], None]


def walk_parser(
    prog: str, description: str, dry_run_help: str, *, first: Options | None = None, after_batch: Options | None = None
) -> argparse.ArgumentParser:
    """The command's parser: ``--dry-run``, the command's ``first`` options, ``--batch``, its options ``after_batch``,
    ``--pause`` and ``--quiet`` (in that order in ``--help``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--dry-run", action="store_true", help=dry_run_help)
    if first is not None:
        first(parser)
    parser.add_argument("--batch", type=int, default=DEFAULT_BATCH, help="keys per SCAN step (default %(default)s)")
    if after_batch is not None:
        after_batch(parser)
    parser.add_argument("--pause", type=float, default=0.0, help="seconds to sleep between SCAN steps, to spare a busy Redis")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


def run_walk(
    args: argparse.Namespace,
    prepare: Callable[[FilesSettings], Prepared],
    walk: Callable[[redis.Redis, FilesSettings, Prepared, Progress], Report],
    last_line: Callable[[dict], bool],
) -> int:
    """Load the settings and ``prepare`` what the walk needs from them (a ``SettingsError`` or ``ValueError``: exit 2),
    ``walk`` on the process's Redis client with a progress printer (a ``StorageError``: exit 2), print its report;
    the exit status.  ``last_line(line)``: a progress line printed even within a second of the one before."""
    from redfile_common.redis_topology import make_redis
    from redfile_common.settings import SettingsError, load_settings
    from redfile_files.settings import FilesSettings

    try:
        settings = load_settings(FilesSettings)
        prepared = prepare(settings)
    except (SettingsError, ValueError) as exc:
        print(json.dumps({"error": "settings", "message": str(exc)}), file=sys.stderr)
        return 2
    printed = [0.0]

    def progress(line: dict) -> None:  # at most one line a second, and the last of a walk
        now = time.monotonic()
        if not args.quiet and (last_line(line) or now - printed[0] >= 1):
            printed[0] = now
            print(json.dumps(line), file=sys.stderr, flush=True)

    client = make_redis(settings)
    try:
        report = walk(client, settings, prepared, progress)
    except StorageError as exc:
        print(json.dumps({"error": "redis", "message": f"{type(exc).__name__}: {exc}"}), file=sys.stderr)
        return 2
    finally:
        client.close()
    print(json.dumps(report.to_dict()))
    return 0 if report.complete else 1
