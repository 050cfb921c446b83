"""py-spy profiles of the files workers under the benchmark's load (``bench/run.py`` unless ``--no-profile``).

Needs py-spy (``make bench`` installs it) and the right to trace the workers
(root, or ptrace allowed).  Two profiles: the authenticated metadata read under
load, and single-stream uploads and downloads.  Each is summarised as the share
of the request threads' samples spent in (inclusive) the functions that matter,
and kept whole as py-spy's collapsed stacks in bench/results/profile-<name>.txt.
"""

from __future__ import annotations

import collections
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from client import load
from measure import MIB, redfile_delete, redfile_download, redfile_upload

HERE = Path(__file__).resolve().parent


def py_spy() -> str | None:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    return found if os.path.exists(found) else None


def record(pid: int, seconds: float, out: Path, fmt: str, *, subprocesses: bool = False) -> subprocess.Popen:
    """py-spy on ``pid`` (with ``subprocesses``: on a gunicorn master, all its workers)."""
    exe = py_spy()
    return subprocess.Popen(
        [
            exe,
            "record",
            "-p",
            str(pid),
            "-d",
            str(max(1, round(seconds))),
            "-r",
            "250",
            "-f",
            fmt,
            "-o",
            str(out),
            "--nonblocking",
            "--gil",
            *(["--subprocesses"] if subprocesses else []),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def summarise(raw: Path, top: int = 40) -> list[tuple[str, float]]:
    """Inclusive share of request-handling samples per function (``func (file:line)`` without the line)."""
    counts: collections.Counter = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if "handle_request" not in stack and "read-ahead" not in stack:
            continue  # idle threads: the poller, the sweeper, the pool's waiting threads
        total += int(n)
        seen = set()
        for frame in stack.split(";"):
            if frame.startswith("process "):
                continue  # which worker (with --subprocesses) says nothing either
            name = frame.split(" (")[0] + " (" + frame.split(" (")[-1].split(":")[0].rstrip(")") + ")" if " (" in frame else frame
            if name not in seen:
                seen.add(name)
                counts[name] += int(n)
    if not total:
        return []
    # frames every request passes through (threads, gunicorn's loop) say nothing: leave them out
    return [(name, round(100 * n / total, 1)) for name, n in counts.most_common() if n < 0.97 * total][:top]


def profile(bench, tmp: Path, seconds: float = 8.0) -> dict:
    if py_spy() is None:
        return {"skipped": "py-spy is not installed (make bench installs it)"}
    results = HERE / "results"
    results.mkdir(exist_ok=True)
    out: dict = {}

    up = redfile_upload(bench.files.port, bench.token, bench.payload(1000, 1000))
    auth = {"Authorization": f"Bearer {bench.token}"}
    raw = tmp / "meta.txt"
    # the load's few keep-alive connections may all land on one worker, not necessarily the first: record all of them
    spy = record(bench.files.proc.pid, seconds, raw, "raw", subprocesses=True)
    time.sleep(0.5)
    load(bench.files.port, f"/files/{up.file_id}/meta", headers=auth, seconds=seconds, connections=bench.args.connections)
    spy.wait(seconds + 30)
    out["meta"] = summarise(raw) if raw.exists() else []
    redfile_delete(bench.files.port, bench.token, up.file_id)

    # the upload and download of a file big enough to keep the worker busy for the whole recording
    payload = bench.payload(512 * MIB)
    raw = tmp / "transfer.txt"
    spy = record(bench.files.proc.pid, seconds, raw, "raw", subprocesses=True)
    done = threading.Event()

    def traffic() -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            u = redfile_upload(bench.files.port, bench.token, payload)
            redfile_download(bench.files.port, bench.token, u.file_id, payload.size)
            redfile_delete(bench.files.port, bench.token, u.file_id)
        done.set()

    # with two workers, connections may land on either: keep both busy, profile both
    lanes = [threading.Thread(target=traffic) for _ in range(2)]
    for t in lanes:
        t.start()
    spy.wait(seconds + 60)
    for t in lanes:
        t.join()
    out["transfer"] = summarise(raw) if raw.exists() else []
    for name in ("meta", "transfer"):
        src = tmp / f"{name}.txt"
        if src.exists():
            shutil.copy(src, results / f"profile-{name}.txt")
    return out
