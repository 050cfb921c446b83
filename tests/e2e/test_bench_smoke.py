"""The benchmark suite, once, at a tiny size (CI's smoke run): it starts, measures everything and writes
the JSON with every key docs/performance.md reads.  No figure is checked: benchmarks are not timed tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

SECTIONS = {
    "machine": {"cores", "loadavg_before", "loadavg_after"},
    "config": {"size_mib", "chunk_bytes", "workers", "threads", "worker_class"},
    "warm_up": {"upload_checksums_ok", "download_sha256_ok"},
    "headline": {
        "raw_set_mib_s",
        "raw_get_mib_s",
        "raw_getrange_mib_s",
        "sha256_mib_s",
        "upload_mib_s",
        "upload_chunks_mib_s",
        "complete_s",
        "upload4_mib_s",
        "upload_sha256_mib_s",
        "upload_tus_mib_s",
        "download_mib_s",
        "bare_upload_mib_s",
        "bare_download_mib_s",
    },
    "redis_paths": {"set_ms", "lua_with_bytes_ms", "set_then_lua_rename_ms", "get_hiredis_ms", "get_python_parser_ms"},
    "peer": {"size_mib", "upload_mib_s", "download_mib_s", "redfile_upload_mib_s", "redfile_download_mib_s", "redfile_tus_upload_mib_s"},
    "small": {"tool", "tiny_rps", "meta_rps", "meta_p50_ms", "meta_alone_p50_ms", "tiny_cpu_ms", "meta_cpu_ms"},
    "login": {"p50_ms", "max_ms", "rate_per_s", "argon2", "argon2_loaded_in_files_workers"},
    "cluster": {
        "primaries",
        "replicas_per_primary",
        "standalone_upload_mib_s",
        "standalone_download_mib_s",
        "cluster_upload_mib_s",
        "cluster_download_mib_s",
        "cluster_upload4_mib_s",
        "upload_cpu_ratio",
        "download_cpu_ratio",
        "upload_time_ratio",
        "download_time_ratio",
        "parallel4_vs_single",
        "headline_shares",
        "spread_shares",
        "spread_off_even_pct_points",
    },
}
ROWS = {
    "chunk_sweep": {"chunk_bytes", "raw_set_mib_s", "raw_get_mib_s", "upload_mib_s", "download_mib_s", "bare_upload_mib_s"},
    "memory": {"size_mib", "upload_mib_s", "download_mib_s", "upload_mib", "download_mib"},
    "peer_memory": {"size_mib", "upload_mib_s", "download_mib_s", "upload_x", "download_x"},
}
TARGETS = {
    "upload_vs_raw_set",
    "upload_chunks_vs_raw_set",
    "upload_tus_vs_raw_set",
    "download_vs_raw_get",
    "download_vs_raw_getrange",
    "upload_vs_seed",
    "upload_tus_vs_seed",
    "download_vs_seed",
    "parallel4_vs_single",
    "rss_growth_1gib_mib",
    "meta_vs_tiny",
    "login_p50_ms",
    "login_vs_meta_p50",
    "cluster_upload_time_vs_standalone",
    "cluster_download_time_vs_standalone",
    "cluster_upload_cpu_vs_standalone",
    "cluster_download_cpu_vs_standalone",
    "cluster_parallel4_vs_single",
    "cluster_spread_off_even_pct_points",
}


def test_the_suite_runs_at_a_tiny_size_and_writes_every_key(tmp_path):
    out = tmp_path / "bench.json"
    # the Python load generator: the fallback for machines without wrk gets run too
    cmd = [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--loadgen", "python", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    doc = json.loads(out.read_text())

    for section, keys in SECTIONS.items():
        assert keys <= set(doc[section]), (section, keys - set(doc[section]))
    for section, keys in ROWS.items():
        assert doc[section], section
        for row in doc[section]:
            assert keys <= set(row), (section, keys - set(row))
    assert {t["key"] for t in doc["targets"]} == TARGETS
    assert doc["warm_up"]["upload_checksums_ok"] is True and doc["warm_up"]["download_sha256_ok"] is True
    assert doc["login"]["argon2_loaded_in_files_workers"] is False
    cluster = doc["cluster"]
    assert cluster["warm_up"] == {"upload_checksums_ok": True, "download_sha256_ok": True, "login_status": 200}
    assert [len(cluster[k]) for k in ("headline_shares", "spread_shares")] == [3, 3]  # one row per primary
    assert sum(row["bytes"] for row in cluster["spread_shares"]) == int(cluster["spread_mib"] * 2**20)  # every chunk found
    assert "target" in proc.stdout  # the table was printed
