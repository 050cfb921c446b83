"""Redfile's benchmark suite: figures and ratios, all taken in one run on one machine.

    make bench                                   # the full run (a few minutes); plots into docs/img
    .venv/bin/python bench/run.py --smoke        # a tiny run (CI's smoke test): the same JSON, no plots
    .venv/bin/python bench/run.py --only cluster # the warm-up and the phases named (see --help), no plots

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
* Redfile on a private 3-primary Redis Cluster (its own files and auth services) against
  the standalone Redis, interleaved: one stream each way, 4 upload streams on the
  cluster, and the bytes of a file on each primary (bench/cluster_bench.py);
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
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import peer
import redis
import small
from client import load
from cluster_bench import ClusterSide, compare
from host import machine, versions
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
from procs import HERE, PeakRss, Processes, free_port, rss_kib
from report import median, mib_s, print_table, ratios, targets
from small import ADMIN

from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import test_env, user_token

DEFAULT_CHUNK = 8 * MIB - 4096  # the files service's DEFAULT_CHUNK_BYTES

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
        "spread_mib": 1024,
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
        "spread_mib": 4,
    },
}


def chunk_bytes(mib: str) -> int:
    """A chunk size in MiB; whole MiB sizes are taken 4 KiB short, as the server's default is (docs/performance.md)."""
    value = float(mib)
    return DEFAULT_CHUNK if value == 8 else int(value * MIB) - (4096 if value >= 1 and value.is_integer() else 0)


class Bench:
    def __init__(self, args, procs: Processes) -> None:
        self.args = args
        self.procs = procs
        self.buf = seed_buffer(max(max(chunk_bytes(c) for c in args.chunks.split(",")), DEFAULT_CHUNK))
        self.files_env = {"MAX_CHUNK_BYTES": str(max(8 * MIB, *(chunk_bytes(c) for c in args.chunks.split(","))))}
        self.files = procs.gunicorn("files", "redfile_files:create_app()", service="files", ready="/readyz", **self.files_env)
        self.bare = procs.gunicorn("bare", "bare_flask:create_app()", service="bare", ready="/readyz", pythonpath=str(HERE / "apps"))
        self.auth = procs.gunicorn(
            "auth", "redfile_auth:create_app()", service="auth", ready="/readyz", ADMIN_USERS=ADMIN[0], ADMIN_PASSWORD=ADMIN[1]
        )
        self.seed = self.start_seed(50)
        self.client = redis.Redis.from_url(procs.redis_url)
        settings = ServiceSettings(**{k.lower(): v for k, v in test_env(procs.redis_url).items()})
        self.raw_client = make_redis(settings)  # the services' own client factory: the ceiling uses what they use
        self.settings = settings
        self.token = user_token(settings, self.client, "bench")

    def start_seed(self, max_mib: int):
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

    def cluster(self) -> dict:
        """The headline file on a 3-primary cluster against the standalone Redis, interleaved (bench/cluster_bench.py)."""
        # the standalone Redis gets as many replicas as each primary has: the ratio is cluster mode's, not replication's
        replicas = self.procs.standalone_replicas(self.args.cluster_replicas)
        side = ClusterSide(self.procs, replicas=self.args.cluster_replicas, admin=ADMIN, **self.files_env)
        try:
            warm = side.warm_up(self.payload(3 * MIB, 1 * MIB))
            payload, spread = self.payload(self.args.size_mib * MIB), self.payload(self.args.spread_mib * MIB)
            standalone = (
                self.files.port,
                self.token,
                lambda: self.files.workers() + [r.proc.pid for r in (self.procs.redis, *replicas) if r.proc],
            )
            return {"warm_up": warm, **compare(side, standalone, payload, self.args.rounds, spread)}
        finally:
            side.stop()
            for replica in replicas:
                replica.stop()

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
            "only": sorted(args.only or PHASES),
            "cluster_replicas": args.cluster_replicas,
        }

        def step(name: str) -> None:
            print(f"bench: {name} ({time.strftime('%H:%M:%S')}, load {os.getloadavg()[0]:.2f})", file=sys.stderr, flush=True)

        step("warm-up")
        doc["warm_up"] = b.warm_up()
        phases = [
            ("memory", "file sizes and memory", b.memory_sweep),  # first: the worker has seen nothing larger than the warm-up
            ("headline", "headline rounds", b.headline),
            ("cluster", "a 3-primary cluster against the standalone Redis", b.cluster),
            ("redis_paths", "Redis paths", b.redis_paths),
            ("peer", "the seed stand-in", lambda: peer.peer_same_size(b)),
            ("chunk_sweep", "chunk sizes", b.chunk_sweep),
            ("peer_memory", "the seed stand-in's memory", lambda: peer.peer_memory(b)),
            ("small", "small requests", lambda: small.small_requests(b)),
            ("login", "login", lambda: small.login(b)),
        ]
        for key, name, phase in phases:
            if args.only and key not in args.only:
                continue
            step(name)
            if key == "headline":
                doc["headline"], doc["headline_rounds"] = phase()
            else:
                doc[key] = phase()
        if args.profile and not args.smoke and not args.only:
            from profile_workers import profile

            step("py-spy profiles")
            doc["profiles"] = profile(b, tmp)
    finally:
        procs.close()
        shutil.rmtree(tmp, ignore_errors=True)
    doc["machine"]["loadavg_after"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    doc["targets"] = targets(ratios(doc))
    return doc


PHASES = ("memory", "headline", "cluster", "redis_paths", "peer", "chunk_sweep", "peer_memory", "small", "login")


def phase_keys(text: str) -> set[str]:
    keys = {k.strip() for k in text.split(",") if k.strip()}
    if not keys or keys - set(PHASES):
        raise argparse.ArgumentTypeError(f"expected some of {', '.join(PHASES)}")
    return keys


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
    p.add_argument("--only", type=phase_keys, help=f"run only these phases (comma-separated: {', '.join(PHASES)}), after the warm-up")
    p.add_argument("--cluster-replicas", type=int, default=1, help="replicas per primary of the cluster phase's 3 primaries")
    p.add_argument("--spread-mib", type=int, help="the file whose bytes per primary are counted in the cluster phase (default 1024)")
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
    if not args.no_plots and not args.smoke and not args.only:
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
