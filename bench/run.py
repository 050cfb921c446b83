"""Redfile's benchmark suite: figures and ratios, all taken in one run on one machine.

    make bench                                   # the full run (a few minutes); plots into docs/img
    .venv/bin/python bench/run.py --smoke        # a tiny run (CI's smoke test): the same JSON, no plots

Starts, on 127.0.0.1 only: a private Redis (no AOF: the software is measured,
not the disk), the files and auth services under the shared gunicorn
configuration exactly as ``make run`` starts them (2 workers x 4 threads,
gthread, JSON request logs to a file, Prometheus multiprocess metrics on), a
bare Flask app under the same configuration, and our stand-in for the seed's
app (bench/apps/seed_standin.py).  Then measures, interleaving the things
compared so that a change of load on the machine hits both sides:

* ceilings: raw redis-py SET and GET (the services' own client: the chunk values
  through the pure-Python packer) of the same chunks against the same Redis; the bare Flask app
  (request body streamed and discarded, a streamed download, a tiny JSON);
* Redfile: an upload session of ``--size-mib`` (one stream, then 4 streams),
  its download; a sweep of chunk sizes and of file sizes with each worker's
  peak RSS; an authenticated metadata read under load (wrk, or a Python
  client when wrk is missing); login latency and rate;
* the peer: the seed stand-in at a size it accepts (default limit 50 MiB) and,
  with its limit raised, at the sizes of the memory sweep.

Prints a table and the targets, writes JSON (``--out``; default
bench/results/bench-<time>.json and bench/results/latest.json), and draws the
figures of docs/performance.md when matplotlib is there (``make bench`` syncs
the ``bench`` dependency group).  Every loop is bounded by a count or a time.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import redis
from client import Http, expect, load
from measure import (
    MIB,
    Payload,
    bare_download,
    bare_upload,
    raw_set_get,
    redfile_delete,
    redfile_download,
    redfile_tus_upload,
    redfile_upload,
    redis_paths,
    seed_buffer,
    seed_delete,
    seed_download,
    seed_upload,
    sha256_seconds,
)
from procs import HERE, PeakRss, Processes, cpu_seconds, free_port, rss_kib
from report import median, mib_s, print_table, targets

from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import test_env, user_token

DEFAULT_CHUNK = 8 * MIB - 4096  # the files service's DEFAULT_CHUNK_BYTES
ADMIN = ("benchadmin", "bench-admin-password-0123")

PRESETS = {
    "full": {
        "size_mib": 256,
        "rounds": 5,
        "chunks": "1,2,4,8",
        "file_sizes": "16,64,256,1024",
        "peer_mib": 48,
        "peer_sizes": "16,48,128,256",
        "load_seconds": 5,
        "logins": 8,
    },
    "smoke": {
        "size_mib": 4,
        "rounds": 1,
        "chunks": "1,2",
        "file_sizes": "2,4",
        "peer_mib": 2,
        "peer_sizes": "2",
        "load_seconds": 1,
        "logins": 2,
    },
}


def chunk_bytes(mib: str) -> int:
    """A chunk size in MiB; whole MiB sizes are taken 4 KiB short, as the server's default is (docs/performance.md)."""
    value = float(mib)
    return DEFAULT_CHUNK if value == 8 else int(value * MIB) - (4096 if value >= 1 and value.is_integer() else 0)


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        info["memory_gib"] = round(int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))) / 1048576, 1)
    except (OSError, StopIteration):
        pass
    info["loadavg_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def versions(redis_url: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("redis", "hiredis", "gunicorn", "flask", "werkzeug"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    client = redis.Redis.from_url(redis_url)
    out["redis_server"] = client.info("server").get("redis_version")
    client.close()
    out["load_generator"] = "wrk" if shutil.which("wrk") else "python"
    return out


class Bench:
    def __init__(self, args, procs: Processes) -> None:
        self.args = args
        self.procs = procs
        self.buf = seed_buffer(max(max(chunk_bytes(c) for c in args.chunks.split(",")), DEFAULT_CHUNK))
        extra = {"MAX_CHUNK_BYTES": str(max(8 * MIB, *(chunk_bytes(c) for c in args.chunks.split(","))))}
        self.files = procs.gunicorn("files", "redfile_files:create_app()", service="files", ready="/readyz", **extra)
        self.bare = procs.gunicorn("bare", "bare_flask:create_app()", service="bare", ready="/readyz", pythonpath=str(HERE / "apps"))
        self.auth = procs.gunicorn(
            "auth", "redfile_auth:create_app()", service="auth", ready="/readyz", ADMIN_USERS=ADMIN[0], ADMIN_PASSWORD=ADMIN[1]
        )
        self.seed = self._seed(50)
        self.client = redis.Redis.from_url(procs.redis_url)
        settings = ServiceSettings(**{k.lower(): v for k, v in test_env(procs.redis_url).items()})
        self.raw_client = make_redis(settings)  # the services' own client factory: the ceiling uses what they use
        self.settings = settings
        self.token = user_token(settings, self.client, "bench")

    def _seed(self, max_mib: int):
        """A fresh stand-in process (a single Flask process, as the seed is)."""
        port = free_port()
        argv = [str(HERE / "apps" / "seed_standin.py"), "--port", str(port), "--redis", self.procs.redis_url, "--max-mib", str(max_mib)]
        return self.procs.single(f"seed-{max_mib}", argv, ready="/readyz", port=port)

    def payload(self, size: int, chunk: int = DEFAULT_CHUNK) -> Payload:
        return Payload(self.buf, size, chunk)

    # -- phases ----------------------------------------------------------------------------------
    def warm_up(self) -> dict:
        """A small round trip through each server, checked byte for byte; imports, pools and buffers get made."""
        small = self.payload(3 * MIB, 1 * MIB)
        sha = small.sha256()
        up = redfile_upload(self.files.port, self.token, small, expected_crc=small.crc32c(), expected_sha=sha)
        _, down_sha = redfile_download(self.files.port, self.token, up.file_id, small.size, verify=True)
        redfile_delete(self.files.port, self.token, up.file_id)
        bare_upload(self.bare.port, small)
        bare_download(self.bare.port, small)
        _, seed_id, _ = seed_upload(self.seed.port, small)
        seed_download(self.seed.port, seed_id, small.size)
        seed_delete(self.seed.port, seed_id)
        for _ in range(2):  # every worker thread of both servers sees a small request
            load(self.files.port, "/readyz", seconds=0.5, connections=4, tool="python")
        # "warmed up": a few MiB through, before any large file; the memory sweep is measured against this
        self.warmed = {pid: rss_kib(pid) for pid in self.files.workers()}
        return {
            "upload_checksums_ok": up.checksum_ok,
            "download_sha256_ok": down_sha == sha,
            "worker_rss_mib": [round(v / 1024, 1) for v in self.warmed.values()],
        }

    def round_trip(self, payload: Payload, *, streams: int = 1, memory: bool = False, sha256: bool = False) -> dict:
        """Upload (with ``streams`` connections; asking for the file's SHA-256 when ``sha256``) and download one
        file; its worker memory when asked."""
        crc, sha = payload.crc32c(), payload.sha256() if sha256 else None
        peak = PeakRss(self.files.workers(), self.warmed) if memory else None
        up = redfile_upload(self.files.port, self.token, payload, streams=streams, expected_crc=crc, expected_sha=sha)
        up_mem = peak.delta_mib() if peak else None
        peak = PeakRss(self.files.workers(), self.warmed) if memory else None
        down_s, _ = redfile_download(self.files.port, self.token, up.file_id, payload.size)
        down_mem = peak.delta_mib() if peak else None
        redfile_delete(self.files.port, self.token, up.file_id)
        if not up.checksum_ok:
            raise RuntimeError("the file's checksums are not those of the bytes uploaded")
        return {
            "upload_mib_s": mib_s(payload.size, up.seconds),
            "upload_chunks_mib_s": mib_s(payload.size, up.chunks_seconds),
            "complete_s": up.complete_seconds,
            "download_mib_s": mib_s(payload.size, down_s),
            "upload_mib": up_mem,
            "download_mib": down_mem,
        }

    def tus_upload(self, payload: Payload) -> float:
        """MiB/s of one tus upload of the whole file in one request (creation-with-upload), checked by its CRC32C."""
        seconds, file_id, crc_ok = redfile_tus_upload(self.files.port, self.token, payload, expected_crc=payload.crc32c())
        redfile_delete(self.files.port, self.token, file_id)
        if not crc_ok:
            raise RuntimeError("the tus upload's CRC32C is not that of the bytes uploaded")
        return mib_s(payload.size, seconds)

    def raw(self, payload: Payload) -> dict:
        set_s, get_s, ranges_s = raw_set_get(self.raw_client, payload)
        return {
            "raw_set_mib_s": mib_s(payload.size, set_s),
            "raw_get_mib_s": mib_s(payload.size, get_s),
            "raw_getrange_mib_s": mib_s(payload.size, ranges_s),
            "sha256_mib_s": mib_s(payload.size, sha256_seconds(payload)),
        }

    def redis_paths(self) -> dict:
        from redis.connection import _RESP2Parser

        python_parser = redis.Redis.from_url(self.procs.redis_url, protocol=2, parser_class=_RESP2Parser)
        python_parser.connection_pool.connection_class = self.raw_client.connection_pool.connection_class
        try:
            return redis_paths(self.raw_client, python_parser, self.payload(self.args.size_mib * MIB))
        finally:
            python_parser.close()

    def peer(self, payload: Payload, seed=None) -> dict | None:
        seed = seed or self.seed
        idle = {pid: rss_kib(pid) for pid in seed.workers()}  # both peaks over its RSS before the upload
        peak = PeakRss(seed.workers(), idle)
        up_s, file_id, status = seed_upload(seed.port, payload)
        if file_id is None:
            return {"refused": status}
        up_mem = peak.delta_mib()
        peak = PeakRss(seed.workers(), idle)
        down_s = seed_download(seed.port, file_id, payload.size)
        down_mem = peak.delta_mib()
        seed_delete(seed.port, file_id)
        size = payload.size / MIB
        return {
            "upload_mib_s": mib_s(payload.size, up_s),
            "download_mib_s": mib_s(payload.size, down_s),
            "upload_mib": up_mem,
            "download_mib": down_mem,
            "upload_x": up_mem / size,
            "download_x": down_mem / size,
        }

    def headline(self) -> tuple[dict, list[dict]]:
        """``--rounds`` rounds of: raw SET/GET, upload (1 and 4 streams), download, the bare app; medians."""
        size = self.args.size_mib * MIB
        payload = self.payload(size)
        rounds = []
        for _ in range(self.args.rounds):
            row = self.raw(payload)
            row.update(self.round_trip(payload))
            row["upload4_mib_s"] = self.round_trip(payload, streams=4)["upload_mib_s"]
            row["upload_sha256_mib_s"] = self.round_trip(payload, sha256=True)["upload_mib_s"]  # asking for the file's SHA-256
            row["upload_tus_mib_s"] = self.tus_upload(payload)
            row["bare_upload_mib_s"] = mib_s(size, bare_upload(self.bare.port, payload))
            row["bare_download_mib_s"] = mib_s(size, bare_download(self.bare.port, payload))
            rounds.append(row)
        keys = [k for k in rounds[0] if k not in ("upload_mib", "download_mib")]
        return {k: median([r[k] for r in rounds]) for k in keys}, rounds

    def peer_same_size(self) -> dict:
        """The seed stand-in and Redfile on the same file, at a size the stand-in accepts by default; medians."""
        payload = self.payload(self.args.peer_mib * MIB)
        seeds, ours = [], []
        for _ in range(self.args.rounds):
            seeds.append(self.peer(payload))
            ours.append(self.round_trip(payload))
            ours[-1]["tus_upload_mib_s"] = self.tus_upload(payload)
        refused = self.peer(self.payload(64 * MIB)) if not self.args.smoke else None
        return {
            "size_mib": self.args.peer_mib,
            "upload_mib_s": median([s["upload_mib_s"] for s in seeds]),
            "download_mib_s": median([s["download_mib_s"] for s in seeds]),
            "redfile_upload_mib_s": median([o["upload_mib_s"] for o in ours]),
            "redfile_download_mib_s": median([o["download_mib_s"] for o in ours]),
            "redfile_tus_upload_mib_s": median([o["tus_upload_mib_s"] for o in ours]),
            "rounds": [[s.get("upload_mib_s") for s in seeds], [o["upload_mib_s"] for o in ours], [o["tus_upload_mib_s"] for o in ours]],
            "refuses_64_mib": (refused or {}).get("refused"),
        }

    def chunk_sweep(self) -> list[dict]:
        size = self.args.size_mib * MIB
        rows = []
        for c in self.args.chunks.split(","):
            payload = self.payload(size, chunk_bytes(c))
            row = {"chunk_bytes": payload.chunk, **self.raw(payload), **self.round_trip(payload)}
            row["bare_upload_mib_s"] = mib_s(size, bare_upload(self.bare.port, payload))
            rows.append(row)
        return rows

    def memory_sweep(self) -> list[dict]:
        rows = []
        for mib in (int(s) for s in self.args.file_sizes.split(",")):
            rows.append({"size_mib": mib, **self.round_trip(self.payload(mib * MIB), memory=True)})
        return rows

    def peer_memory(self) -> list[dict]:
        """The stand-in with its limit raised, so its memory can be drawn against file size."""
        rows = []
        for mib in (int(s) for s in self.args.peer_sizes.split(",")):
            seed = self._seed(mib + 1)  # a fresh process per size: nothing kept from a larger file before
            warm = self.payload(MIB, MIB)
            self.peer(warm, seed)
            rows.append({"size_mib": mib, **self.peer(self.payload(mib * MIB), seed)})
            seed.stop()
        return rows

    def small_requests(self) -> dict:
        """Bare tiny JSON and the authenticated metadata read, alternated, same load generator and settings."""
        up = redfile_upload(self.files.port, self.token, self.payload(1000, 1000))
        auth = {"Authorization": f"Bearer {self.token}"}
        expect(Http(self.files.port).request("GET", f"/files/{up.file_id}/meta", headers=auth), 200)
        a = self.args
        tiny, meta, cpu = [], [], {"tiny": [], "meta": []}

        def measured(name: str, app, run):
            """``run()``'s load, and the app's workers' CPU per request under it (ms)."""
            before = cpu_seconds(app.workers())
            result = run()
            cpu[name].append((cpu_seconds(app.workers()) - before) * 1000 / max(1, result.requests))
            return result

        for _ in range(max(2, a.rounds)):
            tiny.append(
                measured(
                    "tiny",
                    self.bare,
                    lambda: load(self.bare.port, "/tiny", seconds=a.load_seconds, connections=a.connections, tool=a.loadgen),
                )
            )
            meta.append(
                measured(
                    "meta",
                    self.files,
                    lambda: load(
                        self.files.port,
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
        http, alone = Http(self.files.port), []
        for _ in range(20 if a.smoke else 200):  # one at a time: the request's own latency, no queueing
            started = time.perf_counter()
            expect(http.request("GET", f"/files/{up.file_id}/meta", headers=auth), 200)
            alone.append((time.perf_counter() - started) * 1000)
        http.close()
        redfile_delete(self.files.port, self.token, up.file_id)
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

    def login(self) -> dict:
        """Logins one at a time (latency), then ``--connections`` at once (rate, auth worker memory)."""
        import threading

        body = json.dumps({"username": ADMIN[0], "password": ADMIN[1]}).encode()
        headers = {"Content-Type": "application/json"}

        def one(http: Http) -> float:
            started = time.perf_counter()
            expect(http.request("POST", "/auth/login", headers=headers, body=body), 200)
            return (time.perf_counter() - started) * 1000

        http = Http(self.auth.port)
        one(http)
        serial = sorted(one(http) for _ in range(self.args.logins))
        http.close()
        concurrency = 4
        peak = PeakRss(self.auth.workers())
        done: list[float] = []

        def lane() -> None:
            conn = Http(self.auth.port)
            for _ in range(self.args.logins):
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
            "argon2_loaded_in_files_workers": any("argon2" in Path(f"/proc/{pid}/maps").read_text() for pid in self.files.workers()),
        }


def run(args) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="redfile-bench-"))
    started = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    doc: dict = {"started": started, "machine": machine()}
    procs = Processes(tmp, workers=args.workers, threads=args.threads)
    try:
        b = Bench(args, procs)
        doc["versions"] = versions(procs.redis_url)
        doc["config"] = {
            "size_mib": args.size_mib,
            "chunk_bytes": DEFAULT_CHUNK,
            "workers": args.workers,
            "threads": args.threads,
            "worker_class": "gthread",
            "rounds": args.rounds,
            "redis_aof": False,
            "smoke": args.smoke,
        }

        def step(name: str) -> None:
            print(f"bench: {name} ({time.strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)

        step("warm-up")
        doc["warm_up"] = b.warm_up()
        step("file sizes and memory")  # first: the worker has seen nothing larger than the warm-up yet
        doc["memory"] = b.memory_sweep()
        step("headline rounds")
        doc["headline"], doc["headline_rounds"] = b.headline()
        step("Redis paths")
        doc["redis_paths"] = b.redis_paths()
        step("the seed stand-in")
        doc["peer"] = b.peer_same_size()
        step("chunk sizes")
        doc["chunk_sweep"] = b.chunk_sweep()
        step("the seed stand-in's memory")
        doc["peer_memory"] = b.peer_memory()
        step("small requests")
        doc["small"] = b.small_requests()
        step("login")
        doc["login"] = b.login()
        if args.profile and not args.smoke:
            from profile_workers import profile

            step("py-spy profiles")
            doc["profiles"] = profile(b, tmp)
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)
    doc["machine"]["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    doc["targets"] = targets(ratios(doc))
    return doc


def ratios(doc: dict) -> dict:
    h, p, s, login = doc["headline"], doc["peer"], doc["small"], doc["login"]
    big = [m for m in doc["memory"] if m["size_mib"] == 1024]

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return {
        "upload_vs_raw_set": div(h["upload_mib_s"], h["raw_set_mib_s"]),
        "upload_chunks_vs_raw_set": div(h["upload_chunks_mib_s"], h["raw_set_mib_s"]),
        "upload_vs_sha256": div(h["upload_mib_s"], h.get("sha256_mib_s")),
        "upload_sha256_vs_raw_set": div(h.get("upload_sha256_mib_s"), h["raw_set_mib_s"]),
        "download_vs_raw_get": div(h["download_mib_s"], h["raw_get_mib_s"]),
        "download_vs_raw_getrange": div(h["download_mib_s"], h["raw_getrange_mib_s"]),
        "upload_vs_seed": div(p["redfile_upload_mib_s"], p["upload_mib_s"]),
        "upload_tus_vs_raw_set": div(h.get("upload_tus_mib_s"), h["raw_set_mib_s"]),
        "upload_tus_vs_seed": div(p.get("redfile_tus_upload_mib_s"), p["upload_mib_s"]),
        "download_vs_seed": div(p["redfile_download_mib_s"], p["download_mib_s"]),
        "parallel4_vs_single": div(h["upload4_mib_s"], h["upload_mib_s"]),
        "rss_growth_1gib_mib": max(big[0]["upload_mib"], big[0]["download_mib"]) if big else None,
        "meta_vs_tiny": div(s["meta_rps"], s["tiny_rps"]),
        "login_p50_ms": login["p50_ms"],
        "login_vs_meta_p50": div(login["p50_ms"], s["meta_alone_p50_ms"]),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--smoke", action="store_true", help="tiny sizes and loads: checks the suite runs, measures nothing")
    p.add_argument("--size-mib", type=int, help="the headline file (default 256)")
    p.add_argument("--rounds", type=int)
    p.add_argument("--chunks", help="chunk sizes in MiB, comma-separated (whole MiB are taken 4 KiB short)")
    p.add_argument("--file-sizes", help="file sizes of the memory sweep, MiB")
    p.add_argument("--peer-mib", type=int, help="file size for the comparison with the seed stand-in")
    p.add_argument("--peer-sizes", help="file sizes of the stand-in's memory sweep (its limit raised), MiB")
    p.add_argument("--load-seconds", type=float)
    p.add_argument("--logins", type=int)
    p.add_argument("--connections", type=int, default=8)
    p.add_argument("--loadgen", choices=("auto", "wrk", "python"), default="auto")
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.add_argument(
        "--no-profile",
        dest="profile",
        action="store_false",
        help="skip the py-spy profiles of a files worker (taken when py-spy is installed and this is root)",
    )
    p.add_argument("--out", type=Path, help="the JSON (default bench/results/bench-<time>.json, and latest.json)")
    p.add_argument("--plots", type=Path, default=HERE.parent / "docs" / "img", help="where the figures go")
    p.add_argument("--no-plots", action="store_true")
    args = p.parse_args()
    for key, value in PRESETS["smoke" if args.smoke else "full"].items():
        if getattr(args, key) is None:
            setattr(args, key, value)

    doc = run(args)
    print_table(doc)
    results = HERE / "results"
    out = args.out or results / f"bench-{datetime.now().strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2))
    if args.out is None:
        (results / "latest.json").write_text(json.dumps(doc, indent=2))
    print(f"bench: wrote {out}")
    if not args.no_plots and not args.smoke:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            print("bench: no matplotlib here: no plots (make bench installs it)")
        else:
            from plots import draw

            for path in draw(doc, args.plots):
                print(f"bench: drew {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
