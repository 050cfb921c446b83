"""``make run``'s private cluster and Sentinel set-up: the services' environment, data kept across a restart, Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from redfile_dev.ports import port_is_free
from redfile_dev.redis_server import free_port
from redfile_dev.run import admin_exists
from redfile_dev.run_redis import client_for, start_private_redis


@pytest.mark.parametrize("mode", ["cluster", "sentinel"])
def test_a_private_topology_keeps_its_ports_and_data_across_a_restart(tmp_path, mode):
    from redfile_auth.storage import USER

    first = start_private_redis(mode, tmp_path, str)
    try:
        assert first.env["REDIS_MODE"] == mode and f"data in {tmp_path}/redis-{mode}" in first.summary
        if mode == "sentinel":
            assert first.env["REDIS_SENTINEL_MASTER"] == "redfile" and len(first.env["REDIS_SENTINELS"].split(",")) == 3
        assert not admin_exists(first.env, "admin")
        client_for(first.env).hset(USER + "admin", "role", "admin")
        ports = sorted(node.port for node in first.processes)
    finally:
        first.server.stop()
    again = start_private_redis(mode, tmp_path, str)
    try:
        assert sorted(node.port for node in again.processes) == ports
        assert admin_exists(again.env, "admin")
    finally:
        again.server.stop()


def test_an_unreachable_topology_counts_the_admin_as_existing():
    assert admin_exists({"REDIS_MODE": "sentinel", "REDIS_SENTINELS": "127.0.0.1:1", "REDIS_URL": ""}, "admin")


def test_ctrl_c_stops_every_node_of_the_private_cluster(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("REDIS_")}
    env |= {"REDFILE_DATA_DIR": str(tmp_path / "data"), "REDFILE_REDIS_MODE": "cluster", "REDFILE_PORT": str(free_port())}
    env.pop("ADMIN_PASSWORD", None)
    log = tmp_path / "launcher.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "redfile_dev.run"], env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 60
        while "private Redis Cluster: 3 primaries" not in log.read_text() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert "private Redis Cluster: 3 primaries" in log.read_text(), log.read_text()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
        proc.wait(60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
    ports = json.loads((tmp_path / "data" / "redis-cluster" / "ports.json").read_text())["ports"]
    assert len(ports) == 12 and all(port_is_free("127.0.0.1", port) for port in ports), log.read_text()
    assert "redfile: stopped" in log.read_text()
