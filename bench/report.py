"""The run's results: the targets as ratios, a printed table, and the JSON document.

Every target is a ratio of two figures taken in the same run (or a size
difference), checked against its bound; ``met`` says whether it held in this
run.  Nothing here times anything.
"""

from __future__ import annotations

import statistics

# (key, what, how the value is checked, the bound)
TARGETS = [
    ("upload_vs_raw_set", "single-stream upload (create + chunks + complete) / raw SET", ">=", 0.5),
    ("upload_chunks_vs_raw_set", "single-stream upload, chunk PUTs only / raw SET", ">=", 0.5),
    ("download_vs_raw_get", "single-stream download / raw GET", ">=", 0.6),
    ("download_vs_raw_getrange", "single-stream download / raw read in 1 MiB GETRANGE pieces", ">=", 0.6),
    ("upload_tus_vs_raw_set", "single-stream upload by tus, one request (creation-with-upload) / raw SET", ">=", 0.5),
    ("upload_vs_seed", "upload / the seed stand-in's upload (same file size)", ">=", 5.0),
    ("upload_tus_vs_seed", "upload by tus, one request / the seed stand-in's one-request upload", ">=", 5.0),
    ("download_vs_seed", "download / the seed stand-in's download (same file size)", ">=", 5.0),
    ("parallel4_vs_single", "4-stream chunk upload / single-stream upload", ">", 1.0),
    ("rss_growth_1gib_mib", "worker peak RSS over warmed-up, 1 GiB file (MiB)", "<", 64.0),
    ("meta_vs_tiny", "authenticated GET /files/<id>/meta rate / bare Flask tiny-JSON rate", ">=", 0.6),
    ("login_p50_ms", "login (argon2id, production parameters) p50 latency (ms)", "<", 1000.0),
    ("login_vs_meta_p50", "login p50 / authenticated meta p50 (one at a time)", ">", 10.0),
    ("cluster_upload_time_vs_standalone", "3-primary cluster / standalone: upload time, 1 stream", "<=", 1.10),
    ("cluster_download_time_vs_standalone", "3-primary cluster / standalone: download time, 1 stream", "<=", 1.10),
    ("cluster_upload_cpu_vs_standalone", "3-primary cluster / standalone: CPU seconds of an upload (workers + Redis)", "<=", 1.10),
    ("cluster_download_cpu_vs_standalone", "3-primary cluster / standalone: CPU seconds of a download (workers + Redis)", "<=", 1.10),
    ("cluster_parallel4_vs_single", "cluster: 4-stream upload / 1-stream upload (aggregate MiB/s)", ">", 1.0),
    ("cluster_spread_off_even_pct_points", "cluster: a primary's share of a file's bytes, points from 33.3 %", "<=", 10.0),
]


def median(values: list[float]) -> float | None:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def mib_s(size: int, seconds: float) -> float:
    return size / 1048576 / seconds if seconds > 0 else 0.0


def check(op: str, value: float | None, bound: float) -> bool | None:
    if value is None:
        return None
    return {">=": value >= bound, ">": value > bound, "<": value < bound, "<=": value <= bound}[op]


def targets(ratios: dict[str, float | None]) -> list[dict]:
    """Each target whose value the run computed (``--only`` leaves some out)."""
    return [
        {"key": key, "what": what, "value": ratios.get(key), "op": op, "bound": bound, "met": check(op, ratios.get(key), bound)}
        for key, what, op, bound in TARGETS
        if key in ratios
    ]


def ratios(doc: dict) -> dict:
    """The targets' values; with ``--only``, those of the phases that ran."""
    from cluster_bench import ratios as cluster_ratios

    found = cluster_ratios(doc) if "cluster" in doc else {}
    if not {"memory", "headline", "peer", "small", "login"} <= set(doc):
        return found
    h, p, s, login = doc["headline"], doc["peer"], doc["small"], doc["login"]
    big = [m for m in doc["memory"] if m["size_mib"] == 1024]

    def div(a: float | None, b: float | None) -> float | None:
        return a / b if a is not None and b else None

    return found | {
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


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.2f}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def print_table(doc: dict) -> None:
    size = doc["config"]["size_mib"]
    print(
        f"\n== Redfile bench: {size} MiB file, chunk {doc['config']['chunk_bytes']} B, "
        f"{doc['config']['workers']} workers x {doc['config']['threads']} threads (gthread); "
        f"load {doc['machine']['loadavg_before']} -> {doc['machine']['loadavg_after']}"
    )
    whole = {"memory", "headline", "peer", "small", "login"} <= set(doc)  # else --only ran some phases
    rows = _rows(doc) if whole else []
    if "cluster" in doc:
        from cluster_bench import table_rows

        rows += table_rows(doc["cluster"])
    width = max(len(r[0]) for r in rows) + 2 if rows else 0
    for name, value, unit in rows:
        print(f"  {name:<{width}} {_fmt(value):>12} {unit}")
    if whole:
        print(
            "\n  memory (worker peak RSS over warmed-up, MiB): "
            + ", ".join(f"{m['size_mib']} MiB file: up {_fmt(m['upload_mib'])} / down {_fmt(m['download_mib'])}" for m in doc["memory"])
        )
    if doc.get("peer_memory"):
        print(
            "  seed stand-in (peak RSS over start / file size): "
            + ", ".join(f"{m['size_mib']} MiB: up {_fmt(m['upload_x'])}x down {_fmt(m['download_x'])}x" for m in doc["peer_memory"])
        )
    print("\n  target                                                               value      bound   met")
    for t in doc["targets"]:
        met = {True: "yes", False: "NO", None: "-"}[t["met"]]
        print(f"  {t['what']:<66} {_fmt(t['value']):>9} {t['op']:>3}{_fmt(t['bound']):>6}   {met}")
    print()


def _rows(doc: dict) -> list[tuple[str, object, str]]:
    """The printed rows of a whole run's phases: (what, value, unit)."""
    h = doc["headline"]
    return [
        ("raw redis-py SET", h["raw_set_mib_s"], "MiB/s"),
        ("raw redis-py GET", h["raw_get_mib_s"], "MiB/s"),
        ("raw redis-py read in 1 MiB GETRANGE pieces", h["raw_getrange_mib_s"], "MiB/s"),
        ("hashlib SHA-256, one thread (the file's digest)", h.get("sha256_mib_s"), "MiB/s"),
        ("Redfile upload, 1 stream (create+chunks+complete)", h["upload_mib_s"], "MiB/s"),
        ("  of which chunk PUTs", h["upload_chunks_mib_s"], "MiB/s"),
        ("  complete (checks; reads back what was not hashed on arrival)", h["complete_s"], "s"),
        ("Redfile upload, 1 stream, asking for the file's SHA-256", h.get("upload_sha256_mib_s"), "MiB/s"),
        ("Redfile upload, 4 streams", h["upload4_mib_s"], "MiB/s"),
        ("Redfile upload by tus, one request (creation-with-upload)", h.get("upload_tus_mib_s"), "MiB/s"),
        ("Redfile download, 1 stream", h["download_mib_s"], "MiB/s"),
        ("bare Flask: PUT chunks to /sink", h["bare_upload_mib_s"], "MiB/s"),
        ("bare Flask: streamed download", h["bare_download_mib_s"], "MiB/s"),
        (f"seed stand-in upload ({doc['peer']['size_mib']} MiB)", doc["peer"]["upload_mib_s"], "MiB/s"),
        (f"seed stand-in download ({doc['peer']['size_mib']} MiB)", doc["peer"]["download_mib_s"], "MiB/s"),
        (f"Redfile upload ({doc['peer']['size_mib']} MiB)", doc["peer"]["redfile_upload_mib_s"], "MiB/s"),
        (f"Redfile upload by tus, one request ({doc['peer']['size_mib']} MiB)", doc["peer"].get("redfile_tus_upload_mib_s"), "MiB/s"),
        (f"Redfile download ({doc['peer']['size_mib']} MiB)", doc["peer"]["redfile_download_mib_s"], "MiB/s"),
        ("bare Flask tiny JSON", doc["small"]["tiny_rps"], "req/s"),
        ("authenticated GET /files/<id>/meta", doc["small"]["meta_rps"], "req/s"),
        ("  meta p50 / p99 latency under that load", f"{_fmt(doc['small']['meta_p50_ms'])} / {_fmt(doc['small']['meta_p99_ms'])}", "ms"),
        ("  meta p50 latency, one request at a time", doc["small"]["meta_alone_p50_ms"], "ms"),
        (
            "  worker CPU per request: bare tiny JSON / meta",
            f"{doc['small'].get('tiny_cpu_ms', 0):.2f} / {doc['small'].get('meta_cpu_ms', 0):.2f}",
            "ms",
        ),
        ("login (argon2id) p50 / max, one at a time", f"{_fmt(doc['login']['p50_ms'])} / {_fmt(doc['login']['max_ms'])}", "ms"),
        (f"login rate, {doc['login']['concurrency']} at once", doc["login"]["rate_per_s"], "logins/s"),
    ]
