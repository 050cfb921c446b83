"""Compare redis-py's two command packers for large SETs against the same Redis.

    python bench/redis_packer.py [--url redis://127.0.0.1:6379/15] [--sizes 1,4,8] [--rounds 20]

redis-py uses hiredis's packer whenever hiredis is importable, and that packer
copies every value into one buffer; the pure-Python packer sends large values
as they are.  Prints MiB/s for each packer and size and their ratio.  Needs
hiredis installed to compare (``pip install hiredis``); without it only the
pure-Python figure is printed.
"""

from __future__ import annotations

import argparse
import json
import os
import time

import redis
from redis.connection import Connection, PythonRespSerializer

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
    p.add_argument("--url", default=os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15"))
    p.add_argument("--sizes", default="1,4,8", help="MiB")
    p.add_argument("--rounds", type=int, default=20)
    args = p.parse_args()
    rows = []
    for mib in (float(s) for s in args.sizes.split(",")):
        size = int(mib * 2**20)
        py = measure(args.url, PythonPackerConnection, size, args.rounds)
        hi = measure(args.url, HiredisPackerConnection, size, args.rounds) if HAVE_HIREDIS else None
        rows.append(
            {
                "size_mib": mib,
                "python_mib_s": round(py, 1),
                "hiredis_mib_s": round(hi, 1) if hi else None,
                "python_over_hiredis": round(py / hi, 2) if hi else None,
            }
        )
    print(f"{'MiB':>6} {'python MiB/s':>13} {'hiredis MiB/s':>14} {'ratio':>6}")
    for r in rows:
        print(f"{r['size_mib']:>6} {r['python_mib_s']:>13} {r['hiredis_mib_s']!s:>14} {r['python_over_hiredis']!s:>6}")
    print(json.dumps(rows))


if __name__ == "__main__":
    main()
