"""Redfile on a 3-primary Redis Cluster against Redfile on the standalone Redis, in one run.

A private cluster (``redfile_dev.cluster.ClusterProcess``: 3 primaries, ``--cluster-replicas`` replicas
each, no AOF, the same ``redis-server`` as the standalone one) with its own files and auth services,
started as ``Processes.gunicorn`` starts them on the standalone Redis but with ``REDIS_MODE=cluster``
and ``REDIS_URL`` naming one node.  After ``WARM_TRIPS`` unmeasured trips on each side (so that every
worker of each has its connections and scripts), each round uploads and
downloads the headline file over one stream on each side (the side that goes first alternating by
round), then uploads it over 4 streams on the cluster; the ratios are the medians of each round's own.
Then where a file's bytes are: the sum of ``STRLEN`` of its chunk keys on each primary (the bytes
stored, the file's own when it is not encrypted), with ``MEMORY USAGE`` of the same keys beside it.  Every loop is bounded by a
count (rounds, chunks) or by a ``SCAN`` of one primary's keys.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import NamedTuple

import redis
from client import Http, expect
from measure import Payload, redfile_delete, redfile_download, redfile_upload
from procs import Processes, cpu_seconds
from report import median, mib_s

from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import test_env, user_token

PRIMARIES = 3
ROUND_RATIOS = ("upload_time_ratio", "download_time_ratio", "parallel4_vs_single", "upload_cpu_ratio", "download_cpu_ratio")
WARM_TRIPS = 3  # unmeasured trips per side: a worker's first request opens its connections to every node


class ClusterSide:
    """The cluster and the files and auth services on it; ``token`` is the bench user's, minted against it."""

    def __init__(self, procs: Processes, *, replicas: int, admin: tuple[str, str], **files_env: str) -> None:
        self.replicas = replicas
        self.admin = admin
        self.cluster = procs.cluster(primaries=PRIMARIES, replicas=replicas)
        env = {"REDIS_URL": self.cluster.url, "REDIS_MODE": "cluster"}
        self.files = procs.gunicorn("files-cluster", "redfile_files:create_app()", service="files", ready="/readyz", **env, **files_env)
        self.auth = procs.gunicorn(
            "auth-cluster",
            "redfile_auth:create_app()",
            service="auth",
            ready="/readyz",
            ADMIN_USERS=admin[0],
            ADMIN_PASSWORD=admin[1],
            **env,
        )
        settings = ServiceSettings(**{k.lower(): v for k, v in test_env(self.cluster.url, **env).items()})
        self.client = make_redis(settings)  # a cluster client, as the services build theirs
        self.token = user_token(settings, self.client, "bench")

    def pids(self) -> list[int]:
        """The processes an upload or a download on this side runs in: the files workers and every Redis node."""
        return self.files.workers() + [node.proc.pid for node in self.cluster.nodes if node.proc is not None]

    def stop(self) -> None:
        """Stop the services and the cluster, so the phases after this one run without them."""
        self.client.close()
        self.auth.stop()
        self.files.stop()
        self.cluster.stop()

    def warm_up(self, payload: Payload) -> dict:
        """One small file up and down, checked byte for byte, and one login through the cluster's auth service."""
        sha = payload.sha256()
        up = redfile_upload(self.files.port, self.token, payload, expected_crc=payload.crc32c(), expected_sha=sha)
        _, down_sha = redfile_download(self.files.port, self.token, up.file_id, payload.size, verify=True)
        redfile_delete(self.files.port, self.token, up.file_id)
        http = Http(self.auth.port)
        body = json.dumps({"username": self.admin[0], "password": self.admin[1]}).encode()
        login = expect(http.request("POST", "/auth/login", headers={"Content-Type": "application/json"}, body=body), 200)
        http.close()
        return {"upload_checksums_ok": up.checksum_ok, "download_sha256_ok": down_sha == sha, "login_status": login.status}

    def byte_shares(self, file_id: str, size: int) -> list[dict]:
        """Per primary: the chunk keys of ``file_id`` it holds, their ``STRLEN`` sum and ``MEMORY USAGE`` sum."""
        rows = []
        for node in sorted(self.cluster.primaries(), key=lambda n: n.port):
            client = redis.Redis(port=node.port, socket_timeout=10)
            chunks = stored = memory = 0
            try:
                for key in client.scan_iter(match=f"files:{{{file_id}.*}}:c:*", count=1000):
                    chunks += 1
                    stored += client.strlen(key)
                    memory += client.memory_usage(key, samples=0) or 0
            finally:
                client.close()
            rows.append({"port": node.port, "chunks": chunks, "bytes": stored, "memory_usage": memory})
        total = sum(r["bytes"] for r in rows)
        if total < size:
            raise RuntimeError(f"cluster: the chunk keys of {file_id} hold {total} bytes of {size}")
        for row in rows:
            row["share_pct"] = 100 * row["bytes"] / total
        return rows


class Trip(NamedTuple):
    upload_s: float
    download_s: float | None
    file_id: str
    upload_cpu_s: float  # CPU seconds the side's processes (files workers, Redis servers) spent on the upload
    download_cpu_s: float | None


def one_trip(
    port: int, token: str, payload: Payload, crc: str, *, pids: Callable[[], list[int]], streams: int = 1, download: bool = True
) -> Trip:
    """Upload (checked by its CRC32C) and, when ``download``, download one file; not deleted.  ``pids``: the
    processes whose CPU time each counts."""
    before = cpu_seconds(pids())
    up = redfile_upload(port, token, payload, streams=streams, expected_crc=crc)
    uploaded = cpu_seconds(pids())
    if not up.checksum_ok:
        raise RuntimeError("the file's checksums are not those of the bytes uploaded")
    if not download:
        return Trip(up.seconds, None, up.file_id, uploaded - before, None)
    down_s = redfile_download(port, token, up.file_id, payload.size)[0]
    return Trip(up.seconds, down_s, up.file_id, uploaded - before, cpu_seconds(pids()) - uploaded)


def over(value: float, base: float) -> float | None:
    """``value / base``; None when ``base`` is below the clock's tick (a tiny file: nothing measured)."""
    return value / base if base > 0 else None


def compare(
    side: ClusterSide, standalone: tuple[int, str, Callable[[], list[int]]], payload: Payload, rounds: int, spread: Payload
) -> dict:
    """``rounds`` interleaved rounds (standalone and cluster, one stream; the cluster, 4 streams); then the
    per-primary bytes of the last round's file and of ``spread`` (the issue's 1 GiB file).  ``standalone``:
    the standalone files service's port, the bench user's token there, and its processes (workers, Redis)."""
    crc = payload.crc32c()
    sides = [("standalone", *standalone), ("cluster", side.files.port, side.token, side.pids)]
    for _, port, token, pids in sides * WARM_TRIPS:  # unmeasured
        redfile_delete(port, token, one_trip(port, token, payload, crc, pids=pids).file_id)
    rows = []
    headline_shares: list[dict] = []
    for r in range(max(1, rounds)):
        row: dict = {}
        for name, port, token, pids in sides if r % 2 == 0 else sides[::-1]:
            trip = one_trip(port, token, payload, crc, pids=pids)
            row[f"{name}_upload_s"], row[f"{name}_download_s"] = trip.upload_s, trip.download_s
            row[f"{name}_upload_cpu_s"], row[f"{name}_download_cpu_s"] = trip.upload_cpu_s, trip.download_cpu_s
            if name == "cluster" and r == max(1, rounds) - 1:
                headline_shares = side.byte_shares(trip.file_id, payload.size)
            redfile_delete(port, token, trip.file_id)
        four = one_trip(side.files.port, side.token, payload, crc, pids=side.pids, streams=4, download=False)
        redfile_delete(side.files.port, side.token, four.file_id)
        row["cluster_upload4_s"] = four.upload_s
        row["upload_time_ratio"] = row["cluster_upload_s"] / row["standalone_upload_s"]
        row["download_time_ratio"] = row["cluster_download_s"] / row["standalone_download_s"]
        row["upload_cpu_ratio"] = over(row["cluster_upload_cpu_s"], row["standalone_upload_cpu_s"])
        row["download_cpu_ratio"] = over(row["cluster_download_cpu_s"], row["standalone_download_cpu_s"])
        row["parallel4_vs_single"] = row["cluster_upload_s"] / four.upload_s  # aggregate throughput, 4 streams over 1
        rows.append(row)
    spread_id = one_trip(side.files.port, side.token, spread, spread.crc32c(), pids=side.pids, download=False).file_id
    spread_shares = side.byte_shares(spread_id, spread.size)
    redfile_delete(side.files.port, side.token, spread_id)
    size = payload.size

    def rate(key: str) -> float | None:
        return median([mib_s(size, r[key]) for r in rows])

    return {
        "primaries": PRIMARIES,
        "replicas_per_primary": side.replicas,
        "size_mib": size / 1048576,
        "rounds": len(rows),
        "standalone_upload_mib_s": rate("standalone_upload_s"),
        "standalone_download_mib_s": rate("standalone_download_s"),
        "cluster_upload_mib_s": rate("cluster_upload_s"),
        "cluster_download_mib_s": rate("cluster_download_s"),
        "cluster_upload4_mib_s": rate("cluster_upload4_s"),
        "upload_time_ratio": median([r["upload_time_ratio"] for r in rows]),
        "download_time_ratio": median([r["download_time_ratio"] for r in rows]),
        "parallel4_vs_single": median([r["parallel4_vs_single"] for r in rows]),
        "upload_cpu_ratio": median([r["upload_cpu_ratio"] for r in rows]),
        "download_cpu_ratio": median([r["download_cpu_ratio"] for r in rows]),
        "standalone_upload_cpu_s": median([r["standalone_upload_cpu_s"] for r in rows]),
        "cluster_upload_cpu_s": median([r["cluster_upload_cpu_s"] for r in rows]),
        "round_ratios": [[None if r[k] is None else round(r[k], 3) for k in ROUND_RATIOS] for r in rows],
        "headline_shares": headline_shares,
        "spread_mib": spread.size / 1048576,
        "spread_shares": spread_shares,
        "spread_off_even_pct_points": max(abs(s["share_pct"] - 100 / PRIMARIES) for s in spread_shares),
    }


def ratios(doc: dict) -> dict:
    """The cluster's targets (docs/performance.md), from ``doc["cluster"]``."""
    c = doc["cluster"]
    return {
        "cluster_upload_time_vs_standalone": c["upload_time_ratio"],
        "cluster_download_time_vs_standalone": c["download_time_ratio"],
        "cluster_upload_cpu_vs_standalone": c["upload_cpu_ratio"],
        "cluster_download_cpu_vs_standalone": c["download_cpu_ratio"],
        "cluster_parallel4_vs_single": c["parallel4_vs_single"],
        "cluster_spread_off_even_pct_points": c["spread_off_even_pct_points"],
    }


def table_rows(c: dict) -> list[tuple[str, object, str]]:
    """The printed rows of the comparison (report.print_table)."""

    def shares(rows: list[dict]) -> str:
        return " / ".join(f"{r['share_pct']:.1f}" for r in rows)

    size = f"{c['size_mib']:g} MiB"
    return [
        (
            f"standalone, {c['replicas_per_primary']} replica(s): upload / download, 1 stream ({size})",
            f"{c['standalone_upload_mib_s']:,.0f} / {c['standalone_download_mib_s']:,.0f}",
            "MiB/s",
        ),
        (
            f"cluster, {c['primaries']} primaries x {c['replicas_per_primary']} replica(s): upload / download",
            f"{c['cluster_upload_mib_s']:,.0f} / {c['cluster_download_mib_s']:,.0f}",
            "MiB/s",
        ),
        ("cluster: upload, 4 streams", c["cluster_upload4_mib_s"], "MiB/s"),
        (f"cluster: bytes (STRLEN) per primary, the {size} file", shares(c["headline_shares"]), "%"),
        (f"cluster: bytes (STRLEN) per primary, a {c['spread_mib']:g} MiB file", shares(c["spread_shares"]), "%"),
    ]
