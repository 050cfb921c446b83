"""What a chunk value costs in Redis: MEMORY USAGE of one value, for sizes at and just under 2^n.

Redis (jemalloc) rounds each allocation up to a size class; a string value
also carries a small header and a trailing NUL, so a value of exactly 2^n
bytes lands in the next class up (+25 %), while one a little under 2^n fits
2^n.  This prints the cost of one chunk-sized value per byte stored, with and
without the 28 bytes of AES-GCM sealing, to choose DEFAULT_CHUNK_BYTES.

    .venv/bin/python bench/redis_alloc.py                       # a private redis-server
    .venv/bin/python bench/redis_alloc.py --url redis://127.0.0.1:6379/15
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import redis

from redfile_dev.redis_server import RedisProcess

KIB, MIB = 1024, 1024 * 1024
KEY = "files:{0123456789abcdef0123456789abcdef.123}:c:0123456789abcdef"  # a real chunk key's length
SEAL = 28


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    args = parser.parse_args()
    server = None
    if args.url:
        url = args.url
    else:
        server = RedisProcess(Path(tempfile.mkdtemp(prefix="redfile-alloc-")), appendonly=False).start()
        url = server.url
    client = redis.Redis.from_url(url)
    # a value SET by a script costs what a plain SET, or a staged SET renamed into place, costs: the same allocation
    set_by_script = client.register_script("return redis.call('SET', KEYS[1], ARGV[1])")
    try:
        info = client.info("server")
        print(f"{info.get('redis_version')} ({client.info('memory').get('mem_allocator')})")
        print(f"{'value bytes':>12} {'':<22} {'MEMORY USAGE':>13} {'per byte':>9} {'sealed':>9}")
        for n in (20, 22, 23, 24):
            for label, size in ((f"2^{n}", 2**n), (f"2^{n} - 4 KiB", 2**n - 4 * KIB), (f"2^{n} - 64 KiB", 2**n - 64 * KIB)):
                costs = []
                for extra in (0, SEAL):
                    set_by_script(keys=[KEY], args=[b"\0" * (size + extra)])
                    costs.append(client.memory_usage(KEY, samples=0))
                    client.delete(KEY)
                print(f"{size:>12} {label:<22} {costs[0]:>13} {costs[0] / size:>9.4f} {costs[1] / size:>9.4f}")
    finally:
        client.close()
        if server:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
