"""Small requests and login: the authenticated metadata read under load against the bare app, one at a
time, and logins one at a time and 4 at once.  Every loop is bounded by a count or a duration.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

from client import Http, expect, load
from measure import redfile_delete, redfile_upload
from procs import PeakRss, cpu_seconds
from report import median

if TYPE_CHECKING:
    from run import Bench

ADMIN = ("benchadmin", "bench-admin-password-0123")


def small_requests(b: Bench) -> dict:
    """Bare tiny JSON and the authenticated metadata read, alternated, same load generator and settings."""
    up = redfile_upload(b.files.port, b.token, b.payload(1000, 1000))
    auth = {"Authorization": f"Bearer {b.token}"}
    expect(Http(b.files.port).request("GET", f"/files/{up.file_id}/meta", headers=auth), 200)
    a = b.args
    tiny, meta, cpu = [], [], {"tiny": [], "meta": []}

    def measured(name: str, app, run):
        """``run()``'s load, and the app's workers' CPU per request under it (ms)."""
        before = cpu_seconds(app.workers())
        result = run()
        cpu[name].append((cpu_seconds(app.workers()) - before) * 1000 / max(1, result.requests))
        return result

    for _ in range(max(2, a.rounds)):
        tiny.append(
            measured("tiny", b.bare, lambda: load(b.bare.port, "/tiny", seconds=a.load_seconds, connections=a.connections, tool=a.loadgen))
        )
        meta.append(
            measured(
                "meta",
                b.files,
                lambda: load(
                    b.files.port,
                    f"/files/{up.file_id}/meta",
                    headers=auth,
                    seconds=a.load_seconds,
                    connections=a.connections,
                    tool=a.loadgen,
                ),
            )
        )
    if any(x.errors for x in tiny + meta):
        raise RuntimeError(f"errors under load: tiny {[x.errors for x in tiny]}, meta {[x.errors for x in meta]}")
    http, alone = Http(b.files.port), []
    for _ in range(20 if a.smoke else 200):  # one at a time: the request's own latency, no queueing
        started = time.perf_counter()
        expect(http.request("GET", f"/files/{up.file_id}/meta", headers=auth), 200)
        alone.append((time.perf_counter() - started) * 1000)
    http.close()
    redfile_delete(b.files.port, b.token, up.file_id)
    return {
        "tool": meta[0].tool,
        "connections": a.connections,
        "seconds": a.load_seconds,
        "tiny_rps": median([x.rate for x in tiny]),
        "meta_rps": median([x.rate for x in meta]),
        "tiny_p50_ms": median([x.p50_ms for x in tiny]),
        "meta_p50_ms": median([x.p50_ms for x in meta]),
        "meta_p99_ms": median([x.p99_ms for x in meta]),
        "runs": [[x.rate for x in tiny], [x.rate for x in meta]],
        "meta_alone_p50_ms": median(alone),
        # the workers' CPU time per request under that load: what a request costs, whatever the scheduling
        "tiny_cpu_ms": median(cpu["tiny"]),
        "meta_cpu_ms": median(cpu["meta"]),
    }


def login(b: Bench) -> dict:
    """Logins one at a time (latency), then ``--connections`` at once (rate, auth worker memory)."""
    import threading

    body = json.dumps({"username": ADMIN[0], "password": ADMIN[1]}).encode()
    headers = {"Content-Type": "application/json"}

    def one(http: Http) -> float:
        started = time.perf_counter()
        expect(http.request("POST", "/auth/login", headers=headers, body=body), 200)
        return (time.perf_counter() - started) * 1000

    http = Http(b.auth.port)
    one(http)
    serial = sorted(one(http) for _ in range(b.args.logins))
    http.close()
    concurrency = 4
    peak = PeakRss(b.auth.workers())
    done: list[float] = []

    def lane() -> None:
        conn = Http(b.auth.port)
        for _ in range(b.args.logins):
            done.append(one(conn))
        conn.close()

    started = time.perf_counter()
    lanes = [threading.Thread(target=lane) for _ in range(concurrency)]
    for t in lanes:
        t.start()
    for t in lanes:
        t.join()
    elapsed = time.perf_counter() - started
    from redfile_auth.settings import AuthSettings

    fields = AuthSettings.model_fields
    return {
        "p50_ms": median(serial),
        "max_ms": serial[-1],
        "concurrency": concurrency,
        "rate_per_s": len(done) / elapsed,
        "concurrent_p50_ms": median(done),
        "auth_worker_peak_growth_mib": peak.delta_mib(),
        "argon2": {k: fields[f"argon2_{k}"].default for k in ("time_cost", "memory_kib", "parallelism")},
        # argon2's C library mapped into a files worker would mean a password hash could run there
        "argon2_loaded_in_files_workers": any("argon2" in Path(f"/proc/{pid}/maps").read_text() for pid in b.files.workers()),
    }
