"""Peak RSS of a files worker while a large file goes up and comes back down; Redis bytes per file byte.

Starts a private redis-server and one real gunicorn files worker (the shared
gunicorn config, one worker, four threads), warms the worker up with a small
upload and download, then uploads a file of ``--size`` bytes through an upload
session (default chunk size, one PUT per chunk) and downloads it (streamed,
checked byte for byte by SHA-256), sampling the worker's RSS from /proc every
20 ms.  Prints the worker's peak RSS over its warmed-up RSS, and the Redis
memory (MEMORY USAGE of every key of the file) per byte of file.

    .venv/bin/python bench/memory.py                 # 1 GiB
    .venv/bin/python bench/memory.py --encrypt       # the same, with encryption at rest
    .venv/bin/python bench/memory.py --size 268435456 --chunk 8388608

Not a test: it takes a minute and measures this machine.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import google_crc32c
import redis
import requests

from redfile_common.settings import ServiceSettings
from redfile_dev.redis_server import RedisProcess, free_port
from redfile_dev.testing import auth_header, test_env, user_token

MIB = 1024 * 1024


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for {pid}")


def worker_pid(master: int, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        children = Path(f"/proc/{master}/task/{master}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.1)
    raise RuntimeError("gunicorn started no worker")


class Sampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak = 0
        self.running = True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, rss_kib(self.pid))
            time.sleep(0.02)


def pieces(size: int, chunk: int, seed: bytes):
    """Deterministic pseudo-random chunks (SHAKE-256 stream), so client memory stays at one chunk."""
    for index, start in enumerate(range(0, size, chunk)):
        n = min(chunk, size - start)
        yield index, hashlib.shake_256(seed + index.to_bytes(8, "big")).digest(n)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1024 * MIB)
    parser.add_argument("--chunk", type=int, default=0, help="chunk size (default: the server's)")
    parser.add_argument("--encrypt", action="store_true")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="redfile-bench-"))
    server = RedisProcess(tmp / "redis", appendonly=False).start()
    port = free_port()
    extra = {
        "SERVICE_NAME": "files",
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": "1",
        "GUNICORN_THREADS": "4",
        "MAX_FILE_BYTES": str(max(args.size, 16 * MIB)),
        "DEFAULT_QUOTA_BYTES": str(4 * args.size),
    }
    if args.encrypt:
        extra["ENCRYPTION_KEYS"] = "bench:" + base64.b64encode(os.urandom(32)).decode()
    env = {**os.environ, **test_env(server.url, **extra)}
    env.pop("PROMETHEUS_MULTIPROC_DIR", None)
    with open(tmp / "gunicorn.log", "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:redfile_common.gunicorn_conf", "redfile_files:create_app()"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    client = redis.Redis.from_url(server.url)
    try:
        for _ in range(200):
            try:
                if requests.get(f"{base}/readyz", timeout=1).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.1)
        pid = worker_pid(proc.pid)
        settings = ServiceSettings(**{k.lower(): v for k, v in test_env(server.url).items()})
        headers = auth_header(user_token(settings, client, "bench"))
        session = requests.Session()
        phases: dict[str, int] = {}

        def round_trip(size: int) -> tuple[str, float, float]:
            body = {"name": "bench.bin", "total_size": size, **({"chunk_size": args.chunk} if args.chunk else {})}
            up = session.post(f"{base}/uploads", json=body, headers=headers, timeout=30).json()
            chunk = up["chunk_size"]
            digest, crc = hashlib.sha256(), google_crc32c.Checksum()
            started = time.perf_counter()
            for index, data in pieces(size, chunk, b"bench"):
                digest.update(data)
                crc.update(bytes(data))
                resp = session.put(f"{base}/uploads/{up['id']}/chunks/{index}", data=data, headers=headers, timeout=120)
                assert resp.status_code == 201, resp.text
            phases["chunks"] = rss_kib(pid, "VmHWM")
            meta = session.post(f"{base}/uploads/{up['id']}/complete", headers=headers, timeout=600).json()
            up_s = time.perf_counter() - started
            phases["complete"] = rss_kib(pid, "VmHWM")
            assert meta["crc32c"] == crc.digest().hex(), meta
            started = time.perf_counter()
            back = hashlib.sha256()
            with session.get(f"{base}/files/{meta['id']}", headers=headers, stream=True, timeout=600) as resp:
                for block in resp.iter_content(1024 * 1024):
                    back.update(block)
            down_s = time.perf_counter() - started
            phases["download"] = rss_kib(pid, "VmHWM")
            assert back.hexdigest() == digest.hexdigest(), "the download differs"
            return meta["id"], up_s, down_s

        round_trip(3 * MIB)  # warm-up: imports, pools, first buffers
        baseline = rss_kib(pid)
        sampler = Sampler(pid)
        sampler.start()
        file_id, up_s, down_s = round_trip(args.size)
        sampler.running = False
        sampler.join()
        peak = max(sampler.peak, rss_kib(pid, "VmHWM"))

        keys = list(client.scan_iter(match=f"files:{{{file_id}}}:*", count=1000))
        at_rest = sum(client.memory_usage(k, samples=0) or 0 for k in keys)
        chunk_size = int(client.hget(f"files:{{{file_id}}}:meta", "chunk_size") or 0)
        print(f"file: {args.size} bytes ({args.size / MIB:.0f} MiB), chunk size {chunk_size}, encryption {'on' if args.encrypt else 'off'}")
        print(f"upload {args.size / MIB / up_s:.0f} MiB/s, download {args.size / MIB / down_s:.0f} MiB/s")
        print(f"worker RSS: warmed-up {baseline / 1024:.1f} MiB, peak {peak / 1024:.1f} MiB, peak delta {(peak - baseline) / 1024:.1f} MiB")
        print("peak after each phase (MiB over warmed-up): " + ", ".join(f"{k} {(v - baseline) / 1024:.1f}" for k, v in phases.items()))
        print(f"Redis: {len(keys)} keys, {at_rest} bytes for {args.size} file bytes = {at_rest / args.size:.4f} per file byte")
        return 0
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(30)
        client.close()
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
