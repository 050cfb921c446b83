"""The operators' scripts shipped with the chart, against real servers: probes, backup, restore."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from redfile_dev.redis_server import RedisProcess

from .conftest import REDIS_FILES

pytestmark = pytest.mark.skipif(shutil.which("redis-cli") is None, reason="the scripts need redis-cli (redis-tools)")


def run(script: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    return subprocess.run(["sh", str(REDIS_FILES / script), *args], capture_output=True, text=True, timeout=120, env={**os.environ, **env})


def test_probes_pass_as_the_probe_user(acl_redis, ops):
    env = {"REDIS_PORT": str(acl_redis.port), "REDIS_PROBE_PASSWORD_FILE": str(acl_redis.password_dir / "redfile-probe")}
    for mode in ("ready", "alive"):
        done = run("probe.sh", mode, **env)
        assert done.returncode == 0, done.stderr
    assert ops.acl_log() == []


def test_a_probe_with_a_wrong_password_fails(acl_redis, tmp_path):
    wrong = tmp_path / "wrong"
    wrong.write_text("not-the-password")
    done = run("probe.sh", "ready", REDIS_PORT=str(acl_redis.port), REDIS_PROBE_PASSWORD_FILE=str(wrong))
    assert done.returncode == 1
    assert "WRONGPASS" in done.stderr or "invalid" in done.stderr.lower()


def test_backup_then_restore_into_an_aof_data_dir(acl_redis, ops, tmp_path):
    ops.hset("files:meta:{f1}", mapping={"id": "f1", "name": "a.txt"})
    ops.set("files:chunk:{f1}:0", b"\x00\x01 raw chunk bytes")
    ops.set("rf:tokstate:alice", "v7")
    backup = tmp_path / "backup.rdb"
    env = {"REDIS_PORT": str(acl_redis.port), "REDIS_OPS_PASSWORD_FILE": str(acl_redis.password_dir / "redfile-ops")}
    done = run("backup.sh", str(backup), **env)
    assert done.returncode == 0, done.stderr
    assert backup.stat().st_size > 0

    data = tmp_path / "restored"
    data.mkdir()
    done = run("restore.sh", str(backup), str(data))
    assert done.returncode == 0, done.stderr
    assert (data / "appendonlydir" / "appendonly.aof.manifest").exists()

    # Start Redis on the restored directory exactly as deployed: AOF on, the ACL file.
    server = RedisProcess(data, appendonly=True, extra_args=["--aclfile", str(acl_redis.acl_file)]).start()
    try:
        client = acl_redis.client("redfile-ops")
        client.connection_pool.connection_kwargs["port"] = server.port
        assert client.hgetall("files:meta:{f1}") == {b"id": b"f1", b"name": b"a.txt"}
        assert client.get("files:chunk:{f1}:0") == b"\x00\x01 raw chunk bytes"
        assert client.get("rf:tokstate:alice") == b"v7"
        client.close()
    finally:
        server.stop()
