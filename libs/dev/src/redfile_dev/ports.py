"""Ports for ``make run``: distinct free loopback ports, and who holds a port that is taken."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
from pathlib import Path

from .redis_server import free_port


def free_ports(count: int, host: str = "127.0.0.1", taken: set[int] | None = None) -> list[int]:
    """``count`` distinct free ports (the kernel may hand out a just-released port twice, so repeats are skipped)."""
    seen = set(taken or ())
    ports: list[int] = []
    for _ in range(count * 20):
        if len(ports) == count:
            break
        port = free_port(host)
        if port not in seen:
            seen.add(port)
            ports.append(port)
    if len(ports) < count:
        raise RuntimeError(f"could not find {count} distinct free ports on {host}")
    return ports


def port_is_free(host: str, port: int) -> bool:
    """Whether a listener could bind ``host:port`` now (with SO_REUSEADDR, as gunicorn binds: TIME_WAIT is no conflict)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def _listening_inodes(port: int) -> set[str]:
    inodes: set[str] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if len(fields) > 9 and fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    return inodes


def _process_name(pid: int) -> str:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "?"
    return " ".join(part.decode(errors="replace") for part in raw.split(b"\0") if part)[:120] or "?"


def port_holder(port: int) -> str | None:
    """``pid N (command line)`` of the processes listening on ``port``, when this user can see them; else what ``ss`` says; else None."""
    inodes = _listening_inodes(port)
    found: list[str] = []
    if inodes:
        targets = {f"socket:[{inode}]" for inode in inodes}
        for proc in Path("/proc").iterdir():
            if not proc.name.isdigit():
                continue
            with contextlib.suppress(OSError):
                if any(os.readlink(fd) in targets for fd in (proc / "fd").iterdir()):
                    found.append(f"pid {proc.name} ({_process_name(int(proc.name))})")
    if found:
        return ", ".join(found[:3])
    ss = shutil.which("ss")
    if ss:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run([ss, "-H", "-ltnp", f"sport = :{port}"], capture_output=True, text=True, timeout=5).stdout.strip()
            users = out.split("users:", 1)[1].strip() if "users:" in out else ""
            if users:
                return users
    return None
