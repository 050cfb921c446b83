"""Compare redis-py's two command packers for large SETs against the same Redis.

    .venv/bin/python bench/redis_packer.py [--sizes 1,4,8] [--rounds 20]     # a private redis-server
    .venv/bin/python bench/redis_packer.py --url redis://127.0.0.1:<port>/15

redis-py uses hiredis's packer whenever hiredis is importable, and that packer
copies every value into one buffer; the pure-Python packer sends large values
as they are.  Prints MiB/s for each packer and size and their ratio.  hiredis
is one of redfile-common's dependencies; where it is missing only the
pure-Python figure is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

import redis
from redis.connection import Connection, PythonRespSerializer

from redfile_dev.redis_server import RedisProcess

try:
    import hiredis  # noqa: F401
    from redis.connection import HiredisRespSerializer

    HAVE_HIREDIS = True
except ImportError:
    HAVE_HIREDIS = False


class PythonPackerConnection(Connection):
    def _construct_command_packer(self, packer):
        return PythonRespSerializer(self._buffer_cutoff, self.encoder.encode)


class HiredisPackerConnection(Connection):
    def _construct_command_packer(self, packer):
        return HiredisRespSerializer()


def measure(url: str, conn_class, size: int, rounds: int) -> float:
    client = redis.Redis.from_url(url, connection_class=conn_class)
    value = os.urandom(size)
    client.set("bench:packer", value)  # warm up
    started = time.perf_counter()
    for _ in range(rounds):
        client.set("bench:packer", value)
    elapsed = time.perf_counter() - started
    client.delete("bench:packer")
    client.close()
    return size * rounds / elapsed / 2**20


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--url", default=os.environ.get("BENCH_REDIS_URL"), help="default: a private redis-server")
    p.add_argument("--sizes", default="1,4,8", help="MiB")
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    server = None if args.url else RedisProcess(Path(tempfile.mkdtemp(prefix="redfile-packer-")), appendonly=False).start()
    url = args.url or server.url
    rows = []
    try:
        for mib in (float(s) for s in args.sizes.split(",")):
            size = int(mib * 2**20)
            py = measure(url, PythonPackerConnection, size, args.rounds)
            hi = measure(url, HiredisPackerConnection, size, args.rounds) if HAVE_HIREDIS else None
            rows.append(
                {
                    "size_mib": mib,
                    "python_mib_s": round(py, 1),
                    "hiredis_mib_s": round(hi, 1) if hi else None,
                    "python_over_hiredis": round(py / hi, 2) if hi else None,
                }
            )
    finally:
        if server:
            server.stop()
    print(f"{'MiB':>6} {'python MiB/s':>13} {'hiredis MiB/s':>14} {'ratio':>6}")
    for r in rows:
        print(f"{r['size_mib']:>6} {r['python_mib_s']:>13} {r['hiredis_mib_s']!s:>14} {r['python_over_hiredis']!s:>6}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
