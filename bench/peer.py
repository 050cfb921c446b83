"""The peer phases: our stand-in for the seed's app (bench/apps/seed_standin.py) against Redfile.

One file up and down through the stand-in with its peak RSS; the stand-in and Redfile on the same file
at a size it accepts by default; and the stand-in's memory per file size with its limit raised (a
fresh process per size).  Every loop is bounded by a count.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from measure import MIB, Payload, seed_delete, seed_download, seed_upload
from procs import PeakRss, rss_kib
from report import median, mib_s

if TYPE_CHECKING:
    from run import Bench


def peer(b: Bench, payload: Payload, seed=None) -> dict:
    """One upload and download through the stand-in (``seed``, else the run's), with its memory; ``refused`` when it refuses the file."""
    seed = seed or b.seed
    idle = {pid: rss_kib(pid) for pid in seed.workers()}  # both peaks over its RSS before the upload
    peak = PeakRss(seed.workers(), idle)
    up_s, file_id, status = seed_upload(seed.port, payload)
    if file_id is None:
        return {"refused": status}
    up_mem = peak.delta_mib()
    peak = PeakRss(seed.workers(), idle)
    down_s = seed_download(seed.port, file_id, payload.size)
    down_mem = peak.delta_mib()
    seed_delete(seed.port, file_id)
    size = payload.size / MIB
    return {
        "upload_mib_s": mib_s(payload.size, up_s),
        "download_mib_s": mib_s(payload.size, down_s),
        "upload_mib": up_mem,
        "download_mib": down_mem,
        "upload_x": up_mem / size,
        "download_x": down_mem / size,
    }


def peer_same_size(b: Bench) -> dict:
    """The seed stand-in and Redfile on the same file, at a size the stand-in accepts by default; medians."""
    payload = b.payload(b.args.peer_mib * MIB)
    seeds, ours = [], []
    for _ in range(b.args.rounds):
        seeds.append(peer(b, payload))
        ours.append(b.round_trip(payload))
        ours[-1]["tus_upload_mib_s"] = b.tus_upload(payload)
    refused = peer(b, b.payload(64 * MIB)) if not b.args.smoke else None
    return {
        "size_mib": b.args.peer_mib,
        "upload_mib_s": median([s["upload_mib_s"] for s in seeds]),
        "download_mib_s": median([s["download_mib_s"] for s in seeds]),
        "redfile_upload_mib_s": median([o["upload_mib_s"] for o in ours]),
        "redfile_download_mib_s": median([o["download_mib_s"] for o in ours]),
        "redfile_tus_upload_mib_s": median([o["tus_upload_mib_s"] for o in ours]),
        "rounds": [[s.get("upload_mib_s") for s in seeds], [o["upload_mib_s"] for o in ours], [o["tus_upload_mib_s"] for o in ours]],
        "refuses_64_mib": (refused or {}).get("refused"),
    }


def peer_memory(b: Bench) -> list[dict]:
    """The stand-in with its limit raised, so its memory can be drawn against file size."""
    rows = []
    for mib in (int(s) for s in b.args.peer_sizes.split(",")):
        seed = b.start_seed(mib + 1)  # a fresh process per size: nothing kept from a larger file before
        warm = b.payload(MIB, MIB)
        peer(b, warm, seed)
        rows.append({"size_mib": mib, **peer(b, b.payload(mib * MIB), seed)})
        seed.stop()
    return rows
