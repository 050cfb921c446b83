"""Against a real Redis: command timing and errors, the bounded audit stream, and the metrics
server of a gunicorn master (workers' samples plus Redis INFO)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
import redis
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from redfile_common.audit import STREAM, AuditLog, AuditReader
from redfile_common.metrics import start_metrics_server
from redfile_common.product_metrics import CommonMetrics
from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_dev import testing
from redfile_dev.redis_server import free_port
from redfile_dev.testing import make_settings


@pytest.fixture
def observed(redis_url):
    registry = CollectorRegistry()
    metrics = CommonMetrics("files", registry)
    client = make_redis(make_settings(ServiceSettings, redis_url, service_name="files"), observer=metrics.redis_command)
    yield client, lambda name, **labels: registry.get_sample_value(name, {"service": "files", **labels}) or 0.0
    client.close()


@pytest.mark.topology("standalone", "sentinel")  # counts one server's MULTI/EXEC; a cluster transaction sends its own
def test_commands_pipelines_scripts_and_errors_are_timed(observed, redis_client):
    client, value = observed
    redis_client.script_flush()  # another test may have loaded the same script into this Redis
    client.set("k", "v")
    client.get("k")
    with client.pipeline(transaction=True) as pipe:
        pipe.incr("n")
        pipe.incr("n")
        pipe.execute()
    with client.pipeline(transaction=False) as pipe:
        pipe.get("k")
        pipe.execute()
    script = client.register_script("return redis.call('GET', KEYS[1])")
    assert script(keys=["k"]) == b"v"
    with pytest.raises(redis.ResponseError):
        client.hget("k", "field")  # WRONGTYPE
    client.transaction(lambda pipe: pipe.multi() or pipe.set("w", 1), "w")

    assert value("redfile_redis_command_duration_seconds_count", command="SET") == 1
    assert value("redfile_redis_command_duration_seconds_count", command="GET") == 1
    assert value("redfile_redis_command_duration_seconds_count", command="MULTI") == 2  # the pipeline and the transaction
    assert value("redfile_redis_command_duration_seconds_count", command="PIPELINE") == 1
    assert value("redfile_redis_command_duration_seconds_count", command="WATCH") == 1
    assert value("redfile_redis_command_duration_seconds_count", command="INCR") == 0  # queued, not sent alone
    assert value("redfile_redis_command_errors_total", command="EVALSHA", error="NoScriptError") == 1  # first use loads it
    assert (
        value("redfile_redis_command_duration_seconds_count", command="EVAL")
        + value("redfile_redis_command_duration_seconds_count", command="EVALSHA")
        >= 1
    )
    assert value("redfile_redis_command_errors_total", command="HGET", error="ResponseError") == 1


def test_an_unreachable_redis_is_a_counted_connection_error():
    registry = CollectorRegistry()
    metrics = CommonMetrics("auth", registry)
    settings = make_settings(ServiceSettings, f"redis://127.0.0.1:{free_port()}/0", redis_retries=0, redis_connect_timeout=0.5)
    client = make_redis(settings, observer=metrics.redis_command)
    with pytest.raises(redis.ConnectionError):
        client.get("k")
    assert (
        registry.get_sample_value("redfile_redis_command_errors_total", {"service": "auth", "command": "GET", "error": "ConnectionError"})
        == 1
    )


def test_the_audit_stream_stays_bounded(redis_client):
    trail = AuditLog(redis_client, service="auth", max_len=100)
    with redis_client.pipeline(transaction=False):
        for i in range(1500):
            trail.record("logout", actor=f"u{i}", user=f"u{i}")
    length = redis_client.xlen(STREAM)
    assert 100 <= length < 500, length  # MAXLEN ~ trims whole nodes: about, never far above
    newest, _ = AuditReader(redis_client).page(limit=1)
    assert newest[0].actor == "u1499"


def scrape(port: int) -> dict[str, float]:
    text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10).text
    return {s.name + repr(sorted(s.labels.items())): s.value for f in text_string_to_metric_families(text) for s in f.samples}


@pytest.fixture
def master(tmp_path, monkeypatch):
    """A gunicorn master's metrics server, started as gunicorn_conf.when_ready does."""
    servers = []

    def start(redis_url: str, **extra: str) -> int:
        monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
        for key, val in testing.test_env(redis_url, SERVICE_NAME="files", **extra).items():
            monkeypatch.setenv(key, val)
        port = free_port()
        servers.append(start_metrics_server(port, "127.0.0.1", "files"))
        return port

    yield start
    for server, _thread in servers:
        server.shutdown()
        server.server_close()


WORKER_SAMPLE = "redfile_files_uploaded_bytes_total[('service', 'files')]"


def test_the_master_serves_the_workers_samples_and_redis_info(master, redis_url, tmp_path):
    port = master(redis_url)
    worker = (
        "from prometheus_client import CollectorRegistry\n"
        "from redfile_common.product_metrics import FilesMetrics\n"
        "FilesMetrics('files', CollectorRegistry()).bytes_uploaded(1234)\n"
    )
    for _ in range(2):  # two workers of this master write into its multiprocess directory
        subprocess.run([sys.executable, "-c", worker], env=dict(os.environ, PROMETHEUS_MULTIPROC_DIR=str(tmp_path)), check=True, timeout=60)
    samples = scrape(port)
    assert samples[WORKER_SAMPLE] == 2468
    assert samples["redfile_redis_up[('service', 'files')]"] == 1
    assert samples["redfile_redis_memory_used_bytes[('service', 'files')]"] > 0
    assert "redfile_redis_aof_last_write_ok[('service', 'files')]" in samples


def test_a_dead_redis_is_up_0_and_the_scrape_still_answers_quickly(master):
    port = master(f"redis://127.0.0.1:{free_port()}/0", REDIS_INFO_TIMEOUT="0.5")
    started = time.monotonic()
    samples = scrape(port)
    assert samples["redfile_redis_up[('service', 'files')]"] == 0
    assert "redfile_redis_memory_used_bytes[('service', 'files')]" not in samples
    assert time.monotonic() - started < 5
