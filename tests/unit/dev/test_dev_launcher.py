"""The launcher's small parts: distinct free ports, who holds a port, and the one-line echo of a part's errors."""

from __future__ import annotations

import json
import os
import socket

from redfile_dev.ports import free_ports, port_holder, port_is_free
from redfile_dev.run import Launcher


def test_free_ports_are_distinct_and_skip_the_taken_ones():
    taken = set(free_ports(3))
    ports = free_ports(8, taken=taken)
    assert len(set(ports)) == 8 and not taken & set(ports)
    assert all(port_is_free("127.0.0.1", port) for port in ports)


def test_a_listening_port_is_taken_and_its_holder_named():
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        assert not port_is_free("127.0.0.1", port)
        assert f"pid {os.getpid()} (" in (port_holder(port) or "")
    assert port_is_free("127.0.0.1", port)


def test_only_error_lines_of_a_part_reach_the_terminal_once_each(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("REDFILE_DATA_DIR", str(tmp_path / "data"))
    launcher = Launcher()
    launcher.logs_dir.mkdir(parents=True)
    with open(launcher.logs_dir / "files.log", "wb") as log:
        launcher.log_files["files"], launcher.log_offsets["files"] = log, 0
        lines = [
            {"event": "request", "level": "info"},
            {"event": "redis_unavailable", "level": "error"},
            {"event": "Booting worker", "level": "info"},
        ]
        log.write(b"".join(json.dumps(line).encode() + b"\n" for line in lines) + b"Traceback (not JSON)\n" + b'{"event": "half')
        log.flush()
        launcher.report_errors()
        log.write(b' a line", "level": "critical"}\n')
        log.flush()
        launcher.report_errors()
        launcher.report_errors()
    echoed = capsys.readouterr().err.splitlines()
    assert echoed == [
        f"redfile: files error: redis_unavailable (see {launcher.logs_dir / 'files.log'})",
        f"redfile: files critical: half a line (see {launcher.logs_dir / 'files.log'})",
    ]
