"""The chart's sentinel and cluster scripts (helm/redfile/files/redis), run against real Redis servers
loaded with Redfile's ACL file: what the pods and the bootstrap Job run, on loopback ports."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from redfile_dev.redis_server import RedisProcess, find_redis_binary, free_port

from .conftest import REDIS_FILES

SLOTS = 16384


def script(name: str, *args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        ["sh", str(REDIS_FILES / name), *args], capture_output=True, text=True, timeout=timeout, env={"PATH": os.environ["PATH"], **env}
    )


def ops_client(acl_redis, port: int) -> redis.Redis:
    return redis.Redis(
        port=port,
        username="redfile-ops",
        password=acl_redis.passwords["redfile-ops"],
        socket_timeout=5,
        decode_responses=True,
        retry=Retry(NoBackoff(), 0),
    )


def wait_for(what: str, done, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not done():
        if time.monotonic() > deadline:
            raise AssertionError(f"no {what} after {timeout}s")
        time.sleep(0.1)


def start_as_ops(acl_redis, node: RedisProcess) -> RedisProcess:
    """Start a server that loads the ACL file, ready once redfile-ops gets PONG (the harness's own check
    would retry its refused anonymous AUTH with redis-py's backoff, seconds per server)."""
    node.wait_ready = lambda *args, **kwargs: None  # type: ignore[method-assign]
    node.start()
    client = ops_client(acl_redis, node.port)

    def pong() -> bool:
        try:
            return bool(client.ping())
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False

    try:
        wait_for(f"server on port {node.port}", pong, timeout=15)
    finally:
        client.close()
    return node


@pytest.fixture
def cluster_nodes(tmp_path, acl_redis) -> Iterator[list[RedisProcess]]:
    """Three cluster-enabled servers, not yet a cluster, with the ACL users (as the chart's pods start)."""
    nodes = []
    for i in range(3):
        args = ["--aclfile", str(acl_redis.acl_file), "--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf"]
        args += ["--cluster-port", str(free_port()), "--cluster-node-timeout", "2000"]
        nodes.append(start_as_ops(acl_redis, RedisProcess(tmp_path / f"node-{i}", appendonly=False, extra_args=args)))
    yield nodes
    for node in nodes:
        node.stop()


def bootstrap_env(acl_redis, nodes: list[RedisProcess]) -> dict[str, str]:
    return {
        "REDIS_CLUSTER_NODES": " ".join(f"127.0.0.1:{n.port}" for n in nodes),
        "REDIS_CLUSTER_REPLICAS": "0",
        "REDIS_BOOTSTRAP_TIMEOUT": "60",
        "REDIS_OPS_PASSWORD_FILE": str(acl_redis.password_dir / "redfile-ops"),
    }


def test_cluster_bootstrap_creates_the_cluster_once_and_then_changes_nothing(acl_redis, cluster_nodes):
    env = bootstrap_env(acl_redis, cluster_nodes)
    first = script("cluster-bootstrap.sh", env=env)
    assert first.returncode == 0, first.stderr + first.stdout
    clients = [ops_client(acl_redis, n.port) for n in cluster_nodes]
    try:
        for client in clients:
            info = client.cluster("info")
            assert info["cluster_state"] == "ok" and int(info["cluster_slots_assigned"]) == SLOTS
        before = {c.cluster("myid"): sorted(map(str, c.cluster("slots"))) for c in clients}
        # an upgrade, a re-install on kept volumes: the same Job again
        again = script("cluster-bootstrap.sh", env=env)
        assert again.returncode == 0, again.stderr
        assert "the cluster exists" in again.stderr and "creating" not in again.stderr
        assert {c.cluster("myid"): sorted(map(str, c.cluster("slots"))) for c in clients} == before
    finally:
        for client in clients:
            client.close()


def test_cluster_bootstrap_gives_up_in_time_when_a_node_never_answers(acl_redis, cluster_nodes):
    env = bootstrap_env(acl_redis, cluster_nodes) | {"REDIS_BOOTSTRAP_TIMEOUT": "3"}
    env["REDIS_CLUSTER_NODES"] += f" 127.0.0.1:{free_port()}"
    done = script("cluster-bootstrap.sh", env=env, timeout=60)
    assert done.returncode != 0 and "does not answer" in done.stderr
    assert ops_client(acl_redis, cluster_nodes[0].port).cluster("info")["cluster_slots_assigned"] in (0, "0")


def test_a_replica_authenticates_to_its_primary_as_redfile_ops(tmp_path, acl_redis, ops):
    conf = tmp_path / "replication.conf"
    done = script("replication-auth.sh", str(acl_redis.password_dir / "redfile-ops"), str(conf), env={})
    assert done.returncode == 0, done.stderr
    assert conf.stat().st_mode & 0o077 == 0
    ops.set("files:chunk:{f}:0", b"replicated")
    args = ["--aclfile", str(acl_redis.acl_file), "--include", str(conf), "--replicaof", "127.0.0.1", str(acl_redis.port)]
    replica = start_as_ops(acl_redis, RedisProcess(tmp_path / "replica", appendonly=False, extra_args=args))
    try:
        client = ops_client(acl_redis, replica.port)
        wait_for("replication link", lambda: client.info("replication")["master_link_status"] == "up")
        assert client.get("files:chunk:{f}:0") == "replicated"
        client.close()
    finally:
        replica.stop()


def test_a_quoted_password_survives_the_replication_config(tmp_path):
    password = tmp_path / "pw"
    password.write_text('a"b\\c d')
    conf = tmp_path / "replication.conf"
    assert script("replication-auth.sh", str(password), str(conf), env={}).returncode == 0
    server = RedisProcess(tmp_path / "srv", appendonly=False, extra_args=["--include", str(conf)]).start()
    try:
        client = redis.Redis(port=server.port, socket_timeout=5, decode_responses=True)
        assert client.config_get("masterauth")["masterauth"] == 'a"b\\c d'
        assert client.config_get("masteruser")["masteruser"] == "redfile-ops"
        client.close()
    finally:
        server.stop()


@pytest.fixture
def sentinel(tmp_path, acl_redis) -> Iterator[dict[str, str]]:
    """A sentinel started by sentinel-run.sh as in pod-0, watching the ACL Redis as its first primary."""
    sentinel_pw = tmp_path / "sentinel-password"
    sentinel_pw.write_text("a sentinel's password")
    env = {
        "REDIS_SELF": "127.0.0.1",
        "REDIS_SENTINEL_HOSTS": "127.0.0.1",
        "REDIS_FIRST_PRIMARY": "127.0.0.1",
        "REDIS_SENTINEL_MASTER": "redfile",
        "REDIS_SENTINEL_PORT": str(free_port()),
        "REDIS_PORT": str(acl_redis.port),
        "REDIS_SENTINEL_CONF": str(tmp_path / "sentinel.conf"),
        "REDIS_SENTINEL_QUORUM": "1",
        "REDIS_SENTINEL_DOWN_AFTER_MS": "5000",
        "REDIS_SENTINEL_FAILOVER_TIMEOUT_MS": "60000",
        "REDIS_OPS_PASSWORD_FILE": str(acl_redis.password_dir / "redfile-ops"),
        "REDIS_SENTINEL_PASSWORD_FILE": str(sentinel_pw),
    }
    bin_dir = tmp_path / "bin"  # the image's redis-server, whichever binary the tests use
    bin_dir.mkdir()
    (bin_dir / "redis-server").symlink_to(find_redis_binary())
    proc = subprocess.Popen(
        ["sh", str(REDIS_FILES / "sentinel-run.sh")],
        env={"PATH": f"{bin_dir}:{os.environ['PATH']}", **env},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        yield env | {"password": sentinel_pw.read_text()}
    finally:
        proc.terminate()
        proc.wait(10)


def test_the_sentinel_monitors_the_primary_as_ops_and_asks_for_its_password(acl_redis, sentinel):
    port = int(sentinel["REDIS_SENTINEL_PORT"])
    anonymous = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
    client = redis.Redis(port=port, password=sentinel["password"], socket_timeout=2, decode_responses=True)

    def answers() -> bool:
        try:
            return client.ping()
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False

    wait_for("sentinel", answers)
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    assert client.sentinel_get_master_addr_by_name("redfile") == ("127.0.0.1", acl_redis.port)

    # it reached the primary with redfile-ops: it sees the primary as up, not as failing to authenticate
    def primary_seen() -> bool:
        master: dict = client.sentinel_master("redfile")  # type: ignore[assignment]  # a dict for one name
        return "s_down" not in master["flags"] and master["role-reported"] == "master"

    wait_for("primary seen", primary_seen)
    probe = script("probe.sh", "sentinel", env={k: sentinel[k] for k in ("REDIS_SENTINEL_PORT", "REDIS_SENTINEL_PASSWORD_FILE")})
    assert probe.returncode == 0, probe.stderr
    # another pod, starting, asks this sentinel for the primary rather than assuming pod-0
    asked = script(
        "sentinel-primary.sh",
        env={k: v for k, v in sentinel.items() if k != "password"} | {"REDIS_SELF": "other", "REDIS_FIRST_PRIMARY": "pod-0"},
    )
    assert asked.stdout.strip() == "127.0.0.1", asked.stderr
    # ... and its Redis starts as a replica of that primary (the command printed instead of run)
    env = {k: v for k, v in sentinel.items() if k != "password"} | {"REDIS_SELF": "other", "REDIS_FIRST_PRIMARY": "pod-0"}
    started = script("sentinel-redis.sh", "echo", "redis-server", env=env)
    assert started.stdout.split() == ["redis-server", "--replica-announce-ip", "other", "--replicaof", "127.0.0.1", str(acl_redis.port)]
    anonymous.close()
    client.close()


def test_with_no_sentinel_answering_the_first_primary_is_pod_0(tmp_path):
    env = {"REDIS_SELF": "pod-1", "REDIS_SENTINEL_HOSTS": "127.0.0.1", "REDIS_SENTINEL_PORT": str(free_port())}
    done = script("sentinel-primary.sh", env=env | {"REDIS_SENTINEL_MASTER": "redfile", "REDIS_FIRST_PRIMARY": "pod-0"})
    assert done.returncode == 0 and done.stdout.strip() == "pod-0", done.stderr
    env |= {"REDIS_SENTINEL_MASTER": "redfile", "REDIS_FIRST_PRIMARY": "pod-0"}
    as_pod_0 = script("sentinel-redis.sh", "echo", "redis-server", env=env | {"REDIS_SELF": "pod-0"})
    assert as_pod_0.stdout.split() == ["redis-server", "--replica-announce-ip", "pod-0"]  # the primary
    as_pod_1 = script("sentinel-redis.sh", "echo", "redis-server", env=env)
    assert as_pod_1.stdout.split()[-2:] == ["pod-0", "6379"]  # a replica of pod-0


def test_cluster_start_refreshes_every_nodes_ip_from_its_hostname(tmp_path):
    localhost = subprocess.run(["getent", "hosts", "localhost"], capture_output=True, text=True).stdout.split()[0]
    nodes = tmp_path / "nodes.conf"
    nodes.write_text(
        "a1 10.0.0.9:6379@16379,redis-0.h myself,master - 0 0 1 connected 0-5460\n"
        "b2 10.0.0.8:6379@16379,no-such-host.invalid master - 0 1 2 connected 5461-16383\n"
        "c3 10.0.0.7:6379@16379,localhost,shard-id=x slave b2 0 1 3 connected\n"
        "vars currentEpoch 3 lastVoteEpoch 0\n"
    )
    done = script("cluster-start.sh", "true", env={"POD_IP": "10.1.1.1", "REDIS_NODES_CONF": str(nodes)})
    assert done.returncode == 0, done.stderr
    assert nodes.read_text().splitlines() == [
        "a1 10.1.1.1:6379@16379,redis-0.h myself,master - 0 0 1 connected 0-5460",
        "b2 10.0.0.8:6379@16379,no-such-host.invalid master - 0 1 2 connected 5461-16383",
        f"c3 {localhost}:6379@16379,localhost,shard-id=x slave b2 0 1 3 connected",
        "vars currentEpoch 3 lastVoteEpoch 0",
    ]


def test_cluster_start_leaves_a_new_node_to_the_server(tmp_path: Path):
    done = script("cluster-start.sh", "true", env={"POD_IP": "10.1.1.1", "REDIS_NODES_CONF": str(tmp_path / "nodes.conf")})
    assert done.returncode == 0 and not (tmp_path / "nodes.conf").exists()
