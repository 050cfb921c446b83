"""The benchmark's reading of wrk's output (bench/client.py), on a captured sample."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

_spec = importlib.util.spec_from_file_location("bench_client", Path(__file__).resolve().parents[3] / "bench" / "client.py")
assert _spec is not None and _spec.loader is not None
client = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("bench_client", client)  # dataclasses look their module up
_spec.loader.exec_module(client)

SAMPLE = """Running 5s test @ http://127.0.0.1:40000/tiny
  1 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.97ms  850.12us  12.20ms   80.00%
    Req/Sec     2.01k   120.00     2.30k    70.00%
  Latency Distribution
     50%    3.80ms
     75%    4.20ms
     90%    4.90ms
     99%  812.00us
  10012 requests in 5.01s, 1.60MB read
  Non-2xx or 3xx responses: 3
Requests/sec:   1998.40
Transfer/sec:    327.86KB
"""


def test_requests_time_errors_and_percentiles():
    n, seconds, errors, p50, p99 = client.parse_wrk(SAMPLE)
    assert (n, seconds, errors) == (10012, 5.01, 3)
    assert p50 == 3.8 and p99 == 0.812


def test_socket_errors_count_as_errors():
    text = SAMPLE.replace("  Non-2xx or 3xx responses: 3\n", "  Socket errors: connect 1, read 2, write 0, timeout 4\n")
    assert client.parse_wrk(text)[2] == 7
