"""What a run ran on: the machine and the versions of what it measured."""

from __future__ import annotations

import os
import platform
import shutil
from pathlib import Path

import redis


def machine() -> dict:
    info = {"cores": os.cpu_count(), "python": platform.python_version(), "kernel": platform.release()}
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text().splitlines()
        meminfo = Path("/proc/meminfo").read_text().splitlines()
        info["cpu"] = next(line.split(":", 1)[1].strip() for line in cpuinfo if line.startswith("model name"))
        info["memory_gib"] = round(int(next(line.split()[1] for line in meminfo if line.startswith("MemTotal"))) / 1048576, 1)
    except (OSError, StopIteration):
        pass
    info["loadavg_before"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    return info


def versions(redis_url: str) -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("redis", "hiredis", "gunicorn", "flask", "werkzeug"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    client = redis.Redis.from_url(redis_url)
    out["redis_server"] = client.info("server").get("redis_version")
    client.close()
    out["load_generator"] = "wrk" if shutil.which("wrk") else "python"
    return out
