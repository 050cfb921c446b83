"""Before/after: the files service at an earlier commit against the working tree, alternating in one session.

    .venv/bin/python bench/ab.py --rev <commit> [--rounds 3] [--size-mib 256]

For each round, each side in turn starts a private Redis and the files service under the shared
gunicorn configuration (as ``make bench`` does), measures raw redis-py SET of the same chunks (the
ceiling, in the same process), then uploads the file in one stream and in four, and by tus in one
request (creation-with-upload), and downloads it, checking the file's CRC32C.  The earlier side runs
its own ``libs/common`` and ``services/files`` from a ``git worktree`` of ``--rev`` put first on
``PYTHONPATH`` (so it must take the same settings and speak the same HTTP API); the rest of the
environment (dependencies, this script) is the working tree's.  Prints one line per side and round.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


def one_side(rounds: int, size_mib: int) -> None:
    """Runs in a child process, with PYTHONPATH already chosen: measure and print ``rounds`` lines."""
    import redis
    from measure import MIB, Payload, raw_set_get, redfile_delete, redfile_download, redfile_tus_upload, redfile_upload, seed_buffer
    from procs import Processes
    from report import mib_s

    from redfile_common.redis_topology import make_redis
    from redfile_common.settings import ServiceSettings
    from redfile_dev.testing import test_env, user_token

    chunk = 8 * MIB - 4096
    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp), workers=2, threads=4)
        try:
            files = procs.gunicorn("files", "redfile_files:create_app()", service="files", ready="/readyz")
            settings = ServiceSettings(**{k.lower(): v for k, v in test_env(procs.redis_url).items()})
            token = user_token(settings, redis.Redis.from_url(procs.redis_url), "bench")
            buf = seed_buffer(chunk)
            payload, size = Payload(buf, size_mib * MIB, chunk), size_mib * MIB
            crc = payload.crc32c()
            warm = redfile_upload(files.port, token, Payload(buf, 3 * MIB, MIB))
            redfile_delete(files.port, token, warm.file_id)
            for _ in range(rounds):
                set_s, _, _ = raw_set_get(make_redis(settings), payload)
                one = redfile_upload(files.port, token, payload, expected_crc=crc)
                down_s, _ = redfile_download(files.port, token, one.file_id, size)
                redfile_delete(files.port, token, one.file_id)
                four = redfile_upload(files.port, token, payload, streams=4, expected_crc=crc)
                redfile_delete(files.port, token, four.file_id)
                tus_s, tus_id, tus_ok = redfile_tus_upload(files.port, token, payload, expected_crc=crc)
                redfile_delete(files.port, token, tus_id)
                if not (one.checksum_ok and four.checksum_ok and tus_ok):
                    raise RuntimeError("a file's CRC32C is not the payload's")
                print(
                    f"SET {mib_s(size, set_s):5.0f} MiB/s | 1 stream {mib_s(size, one.seconds):4.0f} MiB/s "
                    f"(= {set_s / one.seconds:.2f} x SET; PUTs {mib_s(size, one.chunks_seconds):4.0f}, complete {one.complete_seconds:.2f} s)"
                    f" | 4 streams {mib_s(size, four.seconds):4.0f} MiB/s (complete {four.complete_seconds:.2f} s)"
                    f" | tus, one request {mib_s(size, tus_s):4.0f} MiB/s"
                    f" | download {mib_s(size, down_s):4.0f} MiB/s",
                    flush=True,
                )
        finally:
            procs.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rev", required=True, help="the earlier commit")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size-mib", type=int, default=256)
    parser.add_argument("--side", help=argparse.SUPPRESS)  # internal: run one side
    args = parser.parse_args()
    if args.side:
        one_side(1, args.size_mib)
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        tree = Path(tmp) / "before"
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), args.rev], check=True, capture_output=True)
        try:
            before = os.pathsep.join([str(tree / "libs/common/src"), str(tree / "services/files/src")])
            for _ in range(args.rounds):
                for name, pythonpath in (("before", before), ("after ", "")):
                    env = (
                        {**os.environ, "PYTHONPATH": pythonpath}
                        if pythonpath
                        else {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
                    )
                    print(f"{name} ", end="", flush=True)
                    argv = [
                        sys.executable,
                        str(Path(__file__).resolve()),
                        "--rev",
                        args.rev,
                        "--side",
                        name.strip(),
                        "--size-mib",
                        str(args.size_mib),
                    ]
                    subprocess.run(argv, env=env, check=True, cwd=HERE)
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tree)], check=False, capture_output=True)
    return 0


if __name__ == "__main__":
    sys.path.insert(0, str(HERE))
    sys.exit(main())
