"""Ports for ``make run``: distinct free loopback ports, and who holds a port that is taken."""

from __future__ import annotations

import contextlib
import json
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


class PortTaken(RuntimeError):
    pass


def kept_ports(state_file: Path, count: int) -> list[int]:
    """The ports a topology listed in its JSON state file (``{"ports": [...]}``), else ``count`` free ones, written there.

    Nodes that restart name each other by the ports they had (nodes.conf, sentinel and replica configs), so a
    restart must get the same ones; a kept port that something else holds now stops the start, naming the holder.
    """
    if state_file.exists():
        ports: list[int] = json.loads(state_file.read_text())["ports"]
        for port in ports:
            if not port_is_free("127.0.0.1", port):
                holder = port_holder(port)
                raise PortTaken(
                    f"port {port}, kept in {state_file} for a restart, is taken"
                    + (f" by {holder}" if holder else "")
                    + f"; stop that, or remove {state_file.parent} to start this topology afresh (its data goes)"
                )
        return ports
    return add_kept_ports(state_file, count)


def add_kept_ports(state_file: Path, count: int) -> list[int]:
    """``count`` more free ports, appended to the state file's list (created if missing)."""
    kept: list[int] = json.loads(state_file.read_text())["ports"] if state_file.exists() else []
    new = free_ports(count, taken=set(kept))
    state_file.parent.mkdir(parents=True, exist_ok=True)
    state_file.write_text(json.dumps({"ports": kept + new}))
    return new


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
