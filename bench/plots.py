"""The figures of docs/performance.md, drawn from one run's JSON (matplotlib, Agg backend: no display needed).

.venv/bin/python bench/plots.py bench/results/latest.json docs/img
"""

from __future__ import annotations

import json
import sys
from pathlib import Path


def draw(doc: dict, out: Path) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out.mkdir(parents=True, exist_ok=True)
    made = []
    note = f"{doc['machine']['cores']} cores, loadavg {doc['machine']['loadavg_before']}; {doc['started']}"

    def save(fig, name: str) -> None:
        fig.text(0.99, 0.01, note, ha="right", va="bottom", fontsize=7, color="grey")
        fig.tight_layout(rect=(0, 0.03, 1, 1))
        path = out / name
        fig.savefig(path, dpi=110)
        plt.close(fig)
        made.append(path)

    # 1. throughput against chunk size
    rows = doc["chunk_sweep"]
    if rows:
        x = [r["chunk_bytes"] / 1048576 for r in rows]
        fig, ax = plt.subplots(figsize=(7.5, 5.5))
        for key, label, style in [
            ("raw_set_mib_s", "raw redis-py SET", "k--"),
            ("raw_get_mib_s", "raw redis-py GET", "k:"),
            ("raw_getrange_mib_s", "raw redis-py read in 1 MiB GETRANGE pieces", "C7-."),
            ("upload_chunks_mib_s", "Redfile upload: chunk PUTs", "C0-o"),
            ("upload_mib_s", "Redfile upload incl. complete", "C0--s"),
            ("download_mib_s", "Redfile download", "C1-o"),
            ("bare_upload_mib_s", "bare Flask: PUT to /sink", "C2:^"),
        ]:
            ax.plot(x, [r[key] for r in rows], style, label=label)
        ax.set_xscale("log", base=2)
        ax.set_xticks(x, [f"{v:.2f}".rstrip("0").rstrip(".") for v in x])
        ax.set_xlabel("chunk size (MiB)")
        ax.set_ylabel("MiB/s")
        ax.set_title(f"Throughput against chunk size ({doc['config']['size_mib']} MiB file, one stream)")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncol=2)
        ax.grid(alpha=0.3)
        save(fig, "bench-chunk-size.png")

    # 2. throughput against file size, Redfile and the seed stand-in
    mem = doc["memory"]
    peer = doc.get("peer_memory") or []
    if mem:
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        ax.plot([m["size_mib"] for m in mem], [m["upload_mib_s"] for m in mem], "C0-o", label="Redfile upload (incl. complete)")
        ax.plot([m["size_mib"] for m in mem], [m["download_mib_s"] for m in mem], "C1-o", label="Redfile download")
        if peer:
            ax.plot([m["size_mib"] for m in peer], [m["upload_mib_s"] for m in peer], "C0:x", label="seed stand-in upload")
            ax.plot([m["size_mib"] for m in peer], [m["download_mib_s"] for m in peer], "C1:x", label="seed stand-in download")
        ax.axhline(doc["headline"]["raw_set_mib_s"], color="k", ls="--", lw=0.8, label="raw SET (same run)")
        ax.axhline(doc["headline"]["raw_get_mib_s"], color="k", ls=":", lw=0.8, label="raw GET (same run)")
        ax.set_xscale("log", base=2)
        ax.set_xlabel("file size (MiB)")
        ax.set_ylabel("MiB/s")
        ax.set_title("Throughput against file size (one stream)")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
        save(fig, "bench-file-size.png")

        # 3. memory against file size
        fig, ax = plt.subplots(figsize=(7.5, 4.5))
        ax.plot([m["size_mib"] for m in mem], [m["upload_mib"] for m in mem], "C0-o", label="Redfile worker, upload")
        ax.plot([m["size_mib"] for m in mem], [m["download_mib"] for m in mem], "C1-o", label="Redfile worker, download")
        if peer:
            ax.plot([m["size_mib"] for m in peer], [m["upload_mib"] for m in peer], "C0:x", label="seed stand-in, upload")
            ax.plot([m["size_mib"] for m in peer], [m["download_mib"] for m in peer], "C1:x", label="seed stand-in, download")
        ax.axhline(64, color="r", ls="--", lw=0.8, label="target: < 64 MiB")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_xlabel("file size (MiB)")
        ax.set_ylabel("peak RSS over warmed-up (MiB)")
        ax.set_title("Server memory against file size")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3, which="both")
        save(fig, "bench-memory.png")

    # 4. small requests and login
    small = doc["small"]
    if small.get("tiny_rps"):
        fig, ax = plt.subplots(figsize=(7.5, 3.2))
        names = ["bare Flask tiny JSON", "Redfile GET /files/<id>/meta\n(token check + metadata read)"]
        values = [small["tiny_rps"], small["meta_rps"]]
        ax.barh(names, values, color=["grey", "C0"])
        for i, v in enumerate(values):
            ax.text(v, i, f" {v:,.0f}/s", va="center", fontsize=9)
        ax.axvline(0.6 * small["tiny_rps"], color="r", ls="--", lw=0.8, label="target: 0.6 x bare")
        ax.set_xlabel(f"requests/s ({small['tool']}, {small['connections']} connections, {small['seconds']} s)")
        ax.set_title("Small requests under the same gunicorn configuration")
        ax.legend(fontsize=8, loc="lower right")
        ax.set_xlim(0, max(values) * 1.25)
        save(fig, "bench-small-requests.png")
    return made


def main() -> int:
    doc = json.loads(Path(sys.argv[1]).read_text())
    for path in draw(doc, Path(sys.argv[2] if len(sys.argv) > 2 else "docs/img")):
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
