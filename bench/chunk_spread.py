"""How a file's bytes spread over a Redis Cluster's primaries, from the slots of its chunk keys.

    .venv/bin/python bench/chunk_spread.py [--size-mib 1024] [--primaries 3] [--files 20000]

No Redis is needed: each chunk key's slot is its CRC16 (``redis.cluster.key_slot``, as a cluster
client computes it), and the primaries own the even slot ranges ``redis-cli --cluster create``
gives them (0-5460, 5461-10922, 10923-16383 for three).  For ``--files`` random file ids, a file
of ``--size-mib`` at the default chunk size is cut into chunks; each primary's share of the bytes
is reported for the first file, with the mean, the furthest from an even share over them all, and
how many files were further than ``--bound`` points from it.
Prints JSON.  Bounded by ``--files``.
"""

from __future__ import annotations

import argparse
import json
import math
import secrets

from redfile_files.settings import DEFAULT_CHUNK_BYTES
from redfile_files.storage import keys

SLOTS = 16384
MIB = 1 << 20


def slot_ranges(primaries: int) -> list[tuple[int, int]]:
    """The slot ranges ``redis-cli --cluster create`` assigns ``primaries`` primaries (even, the remainder to the first)."""
    per = SLOTS / primaries
    return [(round(i * per), round((i + 1) * per) - 1) for i in range(primaries)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--primaries", type=int, default=3)
    parser.add_argument("--files", type=int, default=20_000)
    parser.add_argument("--chunk", type=int, default=DEFAULT_CHUNK_BYTES)
    parser.add_argument("--bound", type=float, default=10.0, help="percentage points from an even share counted as beyond")
    args = parser.parse_args()
    ranges = slot_ranges(args.primaries)
    size, even = args.size_mib * MIB, 1 / args.primaries
    first: list[float] = []
    total = [0.0] * args.primaries
    worst, beyond = 0.0, 0
    for _ in range(max(1, args.files)):
        one = keys.chunk_spread(secrets.token_hex(16), size, args.chunk, ranges)
        first = first or one
        total = [t + s for t, s in zip(total, one)]
        furthest = max(abs(s - even) for s in one)
        worst = max(worst, furthest)
        beyond += furthest > args.bound / 100
    result = {
        "file_bytes": size,
        "chunk_bytes": args.chunk,
        "chunks": math.ceil(size / args.chunk),
        "primaries": [f"{lo}-{hi}" for lo, hi in ranges],
        "one_file_shares_pct": [round(100 * s, 1) for s in first],
        "files": max(1, args.files),
        "mean_shares_pct": [round(100 * t / max(1, args.files), 2) for t in total],
        "furthest_from_even_pct_points": round(100 * worst, 2),
        "files_beyond_bound": beyond,
        "bound_pct_points": args.bound,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
