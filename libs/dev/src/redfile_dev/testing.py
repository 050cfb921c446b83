"""Test helpers shared by every service's tests (a pytest plugin).

Enable with ``pytest_plugins = ["redfile_dev.testing"]``.  Fixtures:

* ``redis_server`` (session): a private real Redis on free loopback ports: a standalone server, or, with
  ``REDFILE_TEST_REDIS_MODE=cluster`` or ``sentinel``, a 3-primary cluster with a replica each or a primary
  with two replicas and three sentinels (``redfile_dev.testing_topology``).
* ``redis_url``: a URL naming that server (a cluster node, the current primary), all of whose primaries are
  flushed before each test that uses it.  ``test_env``/``settings_overrides`` given this URL add the
  topology's ``REDIS_MODE`` and, for Sentinel, ``REDIS_SENTINELS`` and ``REDIS_SENTINEL_MASTER``.
* ``redis_client``: a client that works across that topology.
* ``redis_cluster`` / ``redis_sentinel``: a fresh cluster / Sentinel set-up for one test (whatever the mode),
  for tests that kill nodes; stopped after the test.
* ``@pytest.mark.topology("cluster", ...)``: the test runs only when the mode is one of those named.
* ``gunicorn``: ``start(service, redis_url, n=1, **env) -> [ServiceProcess]``: real gunicorn
  processes of a service (``auth``, ``files`` or ``admin``) on free loopback ports, each
  ready on /readyz, all stopped after the test.
* ``spans``: an in-memory span exporter that records the test's spans (tracing is
  switched on for the process the first time it is used, and records only during
  the tests that ask for it).

And helpers to build settings and mint tokens the way auth does.
"""

from __future__ import annotations

import os
import secrets
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from redfile_common import deadline
from redfile_common.settings import ServiceSettings
from redfile_common.tokens import Keyring, ServiceTokens, TokenState, UserTokens

from .cluster import ClusterProcess
from .redis_server import free_port
from .sentinel import SentinelSet
from .testing_topology import flush, forget, register, skip_unless_topology, start_topology, test_redis_mode, topology_client, topology_env

TEST_USER_KEYS = "test-u1:" + "u" * 40 + ",test-u0:" + "o" * 40
TEST_SERVICE_KEYS = "test-s1:" + "s" * 40
TEST_APP_SECRET = "a" * 40


def test_env(redis_url: str, **extra: str) -> dict[str, str]:
    """Environment variables for a service process under test."""
    env = {
        "REDFILE_ENV": "test",
        "REDIS_URL": redis_url,
        "APP_SECRET_KEY": TEST_APP_SECRET,
        "USER_TOKEN_KEYS": TEST_USER_KEYS,
        "SERVICE_TOKEN_KEYS": TEST_SERVICE_KEYS,
        "LOG_LEVEL": "WARNING",
        **topology_env(redis_url),
    }
    env.update(extra)
    return env


def settings_overrides(redis_url: str, **extra) -> dict:
    return {k.lower(): v for k, v in test_env(redis_url).items()} | extra


def make_settings(cls: type[ServiceSettings], redis_url: str, **extra) -> ServiceSettings:
    return cls(**settings_overrides(redis_url, **extra))


def user_token(settings: ServiceSettings, client: redis.Redis, username: str, role: str = "user", *, ttl: int = 900, uid: str = "") -> str:
    """Mint an access token as auth would, creating the user's token version if missing (``uid``: the account's id)."""
    state = TokenState(client)
    version = state.current(username) or state.bump(username)
    tokens = UserTokens(Keyring(settings.user_keyring), issuer=settings.token_issuer, audience=settings.user_token_audience)
    scopes = ["files:read", "files:write"] + (["admin"] if role == "admin" else [])
    token, _ = tokens.mint(username=username, role=role, scopes=scopes, version=version, ttl=ttl, uid=uid)
    return token


def user_account(client: redis.Redis, username: str, role: str = "user") -> str:
    """An account stored as auth stores it (no password: it cannot log in), unless the name has one; its id."""
    from redfile_auth.storage import AuthStore, UserRecord

    store = AuthStore(client, TokenState(client))
    now = "2026-01-01T00:00:00Z"
    store.create_user(UserRecord(username, role, True, now, now, "", id=secrets.token_hex(16)))
    record = store.get_user(username)
    assert record is not None
    return store.ensure_id(record).id


def service_token(settings: ServiceSettings, caller: str, target: str) -> str:
    return ServiceTokens(Keyring(settings.service_keyring), service_name=caller).mint(target)


def auth_header(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(autouse=True)
def _no_budget_left_behind():
    """Every test starts outside a request: a streamed answer a test client never closed keeps its request's
    time budget (``redfile_common.deadline``) in this thread, and the next test in this process would inherit it."""
    deadline.end()
    yield
    deadline.end()


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "topology(*modes): runs only when REDFILE_TEST_REDIS_MODE is one of modes")
    test_redis_mode()  # an unknown mode stops the run before any test


def pytest_runtest_setup(item) -> None:
    skip_unless_topology(item)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory):
    server = start_topology(test_redis_mode(), Path(tmp_path_factory.mktemp("redis")))
    yield server
    forget(server)
    server.stop()


@pytest.fixture
def redis_url(redis_server) -> str:
    flush(redis_server)
    return redis_server.url


@pytest.fixture
def redis_client(redis_server, redis_url):
    client = topology_client(redis_server)
    yield client
    client.close()


@pytest.fixture
def redis_cluster(tmp_path):
    """A fresh 3-primary cluster, a replica each, short node timeout: for a test that kills nodes."""
    cluster = ClusterProcess(tmp_path / "cluster").start()
    register(cluster)
    yield cluster
    forget(cluster)
    cluster.stop()


@pytest.fixture
def redis_sentinel(tmp_path):
    """A fresh primary, two replicas and three sentinels, short failover timeouts: for a test that kills nodes."""
    sentinels = SentinelSet(tmp_path / "sentinel").start()
    register(sentinels)
    yield sentinels
    forget(sentinels)
    sentinels.stop()


def _recording_switch():
    """A span processor that hands finished spans to an in-memory exporter while ``on``."""
    from opentelemetry.sdk.trace import SpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    class RecordingSwitch(SpanProcessor):
        def __init__(self) -> None:
            self.exporter = InMemorySpanExporter()
            self.on = False

        def on_end(self, span) -> None:
            if self.on:
                self.exporter.export((span,))

    return RecordingSwitch()


@pytest.fixture(scope="session")
def _span_switch():
    from opentelemetry import trace

    from redfile_common.tracing import init_tracing

    switch = _recording_switch()
    provider = trace.get_tracer_provider()
    if hasattr(provider, "add_span_processor"):  # tracing was already on in this process
        provider.add_span_processor(switch)
    else:
        init_tracing("test", span_processor=switch)
    return switch


@pytest.fixture
def spans(_span_switch):
    """The in-memory exporter of this test's finished spans."""
    _span_switch.exporter.clear()
    _span_switch.on = True
    yield _span_switch.exporter
    _span_switch.on = False
    _span_switch.exporter.clear()


@pytest.fixture
def serve():
    """Serve WSGI apps on free loopback ports in threads; returns ``start(app) -> base URL``."""
    import threading

    from werkzeug.serving import make_server

    servers = []

    def start(wsgi_app) -> str:
        server = make_server("127.0.0.1", 0, wsgi_app, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def tcp_socket_owners(port: int) -> dict[str, set[int]]:
    """``{"listen": pids, "established": pids}``: the processes holding a TCP socket on local ``port`` (Linux /proc)."""
    states = {"0A": "listen", "01": "established"}
    inodes: dict[str, str] = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as f:
                rows = list(f)[1:]
        except OSError:  # no IPv6 here
            continue
        for row in rows:
            fields = row.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] in states:
                inodes[fields[9]] = states[fields[3]]
    found: dict[str, set[int]] = {"listen": set(), "established": set()}
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            fds = os.listdir(f"/proc/{pid}/fd")
        except OSError:  # gone, or not ours to read
            continue
        for fd in fds:
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:  # closed meanwhile
                continue
            if link.startswith("socket:[") and (state := inodes.get(link[8:-1])):
                found[state].add(int(pid))
    return found


class ServiceProcess:
    """One real gunicorn master (and its workers) of a Redfile service, in its own process group.

    ``app``: the WSGI app to load instead of the service's own (``module:factory()``, a test's app built on it).
    """

    def __init__(self, service: str, redis_url: str, log_dir: Path, app: str | None = None, **env: str) -> None:
        self.service = service
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        defaults = {"WEB_CONCURRENCY": "1", "GUNICORN_THREADS": "4", "SWEEP_INTERVAL": "0"}  # ``env`` may override these
        full = {**os.environ, **test_env(redis_url, **{**defaults, **env}, SERVICE_NAME=service, BIND=f"127.0.0.1:{self.port}")}
        full.pop("PROMETHEUS_MULTIPROC_DIR", None)
        self.log_path = Path(log_dir) / f"{service}-{self.port}.log"
        self.log = open(self.log_path, "wb")  # noqa: SIM115 -- the server's output file lives until stop() closes it
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", "-c", "python:redfile_common.gunicorn_conf", app or f"redfile_{service}:create_app()"],
            env=full,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self, timeout: float = 30) -> None:
        import requests

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, f"gunicorn exited while starting:\n{self.log_path.read_text(errors='replace')[-2000:]}"
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"{self.service} on {self.url} not ready in {timeout} s")

    def worker_pids(self) -> list[int]:
        """The gunicorn workers (children of the master), read from /proc."""
        pids = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                    pids.append(int(entry.name))
        return pids

    def kill(self) -> None:
        """SIGKILL the master and its workers (the process group this helper started)."""
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.kill()
        self.log.close()


@pytest.fixture
def gunicorn(tmp_path):
    """``start(service, redis_url, n=1, app=None, **env)`` -> ready :class:`ServiceProcess` es, stopped after the test."""
    started: list[ServiceProcess] = []

    def start(service: str, redis_url: str, n: int = 1, app: str | None = None, **env: str) -> list[ServiceProcess]:
        new = [ServiceProcess(service, redis_url, tmp_path, app, **env) for _ in range(n)]
        started.extend(new)
        for proc in new:
            proc.wait_ready()
        return new

    yield start
    for proc in started:
        proc.stop()


def _pools(client) -> list:
    """The connection pools of ``client``: its one, or each node's of a cluster client."""
    from redis.cluster import RedisCluster

    if isinstance(client, RedisCluster):
        return [node.redis_connection.connection_pool for node in client.get_nodes() if node.redis_connection is not None]
    return [client.connection_pool]


def connections_in_use(client) -> int:
    """Connections ``client``'s pools have handed out and not had back (redis-py keeps no public count)."""
    return sum(len(pool._in_use_connections) for pool in _pools(client))


def connections_made(client) -> int:
    return sum(pool._created_connections for pool in _pools(client))


def restore_state(r, state) -> None:
    """Empty every primary of ``r``'s topology, then RESTORE each (key, ttl, DUMP) of ``state``."""
    from redis.cluster import RedisCluster

    if isinstance(r, RedisCluster):
        r.flushall(target_nodes=RedisCluster.PRIMARIES)
    else:
        r.flushall()
    pipe = r.pipeline(transaction=False)
    for key, ttl, value in state:
        pipe.restore(key, ttl, value, replace=True)
    pipe.execute()


def redis_state(r: redis.Redis, skip=lambda key: False) -> dict:
    """Every key (but those ``skip(key)``): its type, value and whether it expires.

    Compare two of these to prove a request changed nothing in Redis.
    """
    readers = {
        "string": r.get,
        "hash": r.hgetall,
        "zset": lambda k: r.zrange(k, 0, -1, withscores=True),
        "set": lambda k: sorted(r.smembers(k)),
        "list": lambda k: r.lrange(k, 0, -1),
        "stream": r.xlen,
    }
    state = {}
    for key in sorted(k for k in r.scan_iter(count=1000) if not skip(k)):
        raw_kind = r.type(key)
        kind = raw_kind.decode() if isinstance(raw_kind, bytes) else str(raw_kind)
        read = readers.get(kind)
        state[key] = (kind, read(key) if read else kind, r.ttl(key) != -1)
    return state


@pytest.fixture
def unique() -> str:
    return secrets.token_hex(4)
