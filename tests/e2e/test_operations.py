"""Operations end to end: exact metrics across gunicorn workers, Redis INFO gauges on every metrics
port, security events in the log, the audit trail and the admin views."""

from __future__ import annotations

import contextlib
import http.client
import json

import redis
import requests
from flask import Flask
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from redfile_common import request_watch
from redfile_common.metrics import init_metrics
from redfile_common.product_metrics import AuthMetrics, CommonMetrics, FilesMetrics
from redfile_common.redis_info import RedisInfo, RedisInfoCollector
from redfile_dev.testing import tcp_socket_owners

SERVICES = ("auth", "files", "admin")


def families(port: int) -> dict:
    resp = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200
    return {f.name: f for f in text_string_to_metric_families(resp.text)}


def value(port: int, sample: str, **labels) -> float:
    total = 0.0
    for family in families(port).values():
        for s in family.samples:
            if s.name == sample and all(s.labels.get(k) == v for k, v in labels.items()):
                total += s.value
    return total


def fresh_session() -> requests.Session:
    session = requests.Session()
    session.headers["Connection"] = "close"  # a new connection each time: requests spread over the workers
    return session


def test_login_counts_are_exact_across_workers(system, make_user):
    name, password, _ = make_user()
    port = system.metrics_ports["auth"]
    before = {r: value(port, "redfile_auth_logins_total", result=r) for r in ("success", "failure")}
    s = fresh_session()
    for _ in range(4):
        assert s.post(f"{system.base}/auth/login", json={"username": name, "password": "not-" + password}, timeout=30).status_code == 401
    for _ in range(6):
        resp = s.post(f"{system.base}/auth/login", json={"username": name, "password": password}, timeout=30)
        assert resp.status_code == 200
    assert value(port, "redfile_auth_logins_total", result="failure") - before["failure"] == 4
    assert value(port, "redfile_auth_logins_total", result="success") - before["success"] == 6


def test_token_rejections_are_exact_and_by_reason(system):
    port = system.metrics_ports["files"]
    labels = {"service": "files", "kind": "access", "reason": "malformed"}
    before = value(port, "redfile_token_rejections_total", **labels)
    s = fresh_session()
    for _ in range(12):
        assert s.get(f"{system.base}/files", headers={"Authorization": "Bearer garbage"}, timeout=10).status_code == 401
    assert value(port, "redfile_token_rejections_total", **labels) - before == 12


def test_file_byte_and_upload_counts_are_exact_across_workers(system, make_user):
    _, _, api = make_user()
    port = system.metrics_ports["files"]
    names = ("redfile_files_uploaded_bytes_total", "redfile_files_downloaded_bytes_total")
    before = {n: value(port, n) for n in names}
    started = value(port, "redfile_files_upload_events_total", event="started")
    s = fresh_session()
    headers = {"Authorization": f"Bearer {api.token}"}
    for i in range(5):
        made = s.post(f"{system.base}/files", files={"file": (f"m{i}.bin", b"m" * 300)}, headers=headers, timeout=30)
        assert made.status_code == 201, made.text
        assert s.get(f"{system.base}/files/{made.json()['id']}", headers=headers, timeout=30).content == b"m" * 300
    for _ in range(3):
        assert s.post(f"{system.base}/uploads", json={"name": "u.bin", "total_size": 10}, headers=headers, timeout=30).status_code == 201
    assert {n: value(port, n) - before[n] for n in names} == dict.fromkeys(names, 1500)
    assert value(port, "redfile_files_upload_events_total", event="started") - started == 3


def test_every_metrics_port_reads_redis_info(system):
    for service in SERVICES:
        port = system.metrics_ports[service]
        assert value(port, "redfile_redis_up", service=service) == 1, service
        assert value(port, "redfile_redis_memory_used_bytes", service=service) > 0
        assert value(port, "redfile_redis_aof_enabled", service=service) == 1  # make run's Redis keeps an AOF
        assert value(port, "redfile_redis_aof_last_write_ok", service=service) == 1
        assert value(port, "redfile_readiness_checks_total", service=service, result="ok") >= 1  # the launcher's wait


def test_admin_measures_its_calls_to_auth_and_its_redis_commands(system, admin):
    port = system.metrics_ports["admin"]
    call = {"service": "admin", "target": "auth", "method": "GET", "status": "200"}
    before_calls = value(port, "redfile_service_call_duration_seconds_count", **call)
    before_mget = value(port, "redfile_redis_command_duration_seconds_count", service="admin", command="MGET")
    for _ in range(5):
        admin.session.headers["Connection"] = "close"
        assert admin.get("/admin/users?limit=1").status_code == 200
    assert value(port, "redfile_service_call_duration_seconds_count", **call) - before_calls == 5
    assert value(port, "redfile_redis_command_duration_seconds_count", service="admin", command="MGET") - before_mget >= 5  # token checks


def log_records(system) -> list[dict]:
    records = []
    for line in system.logs().splitlines():
        if line.startswith("{"):
            with contextlib.suppress(ValueError):
                records.append(json.loads(line))
    return records


def test_security_events_are_structured_warnings(system, make_user):
    name, _, api = make_user()
    assert api.get("/admin/users").status_code == 403  # permission denied
    forged = requests.get(
        f"http://127.0.0.1:{system.ports['files']}/internal/files", headers={"Authorization": "Bearer not.a.service.token"}, timeout=10
    )
    assert forged.status_code == 401
    assert requests.post(f"{system.base}/auth/login", json={"username": name, "password": "nope-nope-nope"}, timeout=30).status_code == 401
    security = [r for r in log_records(system) if r.get("category") == "security"]
    assert all(r["level"] == "warning" for r in security)
    assert any(r["event"] == "permission_denied" and r.get("user") == name and r["service"] == "admin" for r in security)
    assert any(r["event"] == "security_token_rejected" and r.get("token_kind") == "service" and r["service"] == "files" for r in security)
    assert any(r["event"] == "login_failed" and r.get("username") == name for r in security)


def test_the_audit_trail_through_the_admin_api(system, admin, make_user):
    name, _, api = make_user()
    assert api.post("/auth/logout", json={}).status_code == 204
    assert admin.post("/admin/roles", json={"username": name, "role": "admin"}).status_code == 200
    assert admin.delete(f"/admin/users/{name}").status_code == 204

    items, cursor = [], None
    while True:
        page = admin.get("/admin/audit", params={"user": name, "limit": 2, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    assert [e["action"] for e in items] == ["user.deleted", "role.changed", "logout", "login.succeeded", "user.created"]
    assert {e["service"] for e in items} == {"auth", "admin"}
    assert items[1]["actor"] == "admin" and items[1]["details"] == {"role": "admin"}
    assert all(e["remote"] == "127.0.0.1" for e in items)  # the client's address, through the gateway
    logins = admin.get("/admin/audit", params={"user": name, "action": "login"}).json()["items"]
    assert [e["action"] for e in logins] == ["login.succeeded"]


def test_admin_stats(system, admin, make_user):
    def files_part() -> dict:
        resp = admin.get("/admin/stats")
        assert resp.status_code == 200, resp.text
        assert resp.json()["unavailable"] == []
        return resp.json()["files"]

    def usage_of(name) -> tuple:
        resp = admin.get(f"/admin/users/{name}/usage")
        assert resp.status_code == 200, resp.text
        return resp.json()["files"], resp.json()["bytes_stored"], resp.json()["active_uploads"]

    resp = admin.get("/admin/stats")
    assert resp.status_code == 200, resp.text
    stats = resp.json()
    assert stats["users"]["total"] >= 1
    redis = stats["redis"]
    assert redis["up"] is True and redis["maxmemory_policy"] == "noeviction" and redis["used_memory_bytes"] > 0
    assert redis["persistence"]["aof_enabled"] is True and redis["persistence"]["aof_last_write_ok"] is True
    assert stats["unavailable"] == []
    before = stats["files"]
    assert all(isinstance(before[k], int) and before[k] >= 0 for k in ("files", "bytes_stored", "active_uploads"))

    name, _, api = make_user()
    assert usage_of(name) == (0, 0, 0)
    assert api.post("/files", files={"file": ("stats.bin", b"s" * 1000)}).status_code == 201
    text = api.post("/texts", json={"name": "stats.txt", "content": "12345"})
    assert text.status_code == 201
    upload = api.post("/uploads", json={"name": "later.bin", "total_size": 100})
    assert upload.status_code == 201
    assert usage_of(name) == (2, 1005, 1)
    after = files_part()
    assert after == {
        "files": before["files"] + 2,
        "bytes_stored": before["bytes_stored"] + 1005,
        "active_uploads": before["active_uploads"] + 1,
    }

    assert api.delete(f"/files/{text.json()['id']}").status_code == 204
    assert api.delete(f"/uploads/{upload.json()['id']}").status_code == 204
    assert usage_of(name) == (1, 1000, 0)
    assert files_part() == {**before, "files": before["files"] + 1, "bytes_stored": before["bytes_stored"] + 1000}
    assert admin.delete(f"/admin/users/{name}").status_code == 204
    assert files_part() == before
    deleted = admin.get("/admin/audit", params={"user": name, "action": "file.deleted"}).json()["items"]
    assert [(e["service"], e["actor"], e["target"]) for e in deleted] == [("files", name, text.json()["id"])]


def defined_families() -> set[str]:
    """Every family name the code defines (as tests/unit/common/test_dashboards.py builds it)."""
    app = Flask("probe")
    registry = CollectorRegistry(auto_describe=True)
    init_metrics(app, "probe", registry)
    for group in (CommonMetrics, AuthMetrics, FilesMetrics):
        group("probe", registry)
    names = {f.name for f in registry.collect()}
    # describe() reads nothing: a client whose socket does not exist is never used
    unused = redis.Redis(unix_socket_path="/nonexistent/redfile-probe.sock")
    return names | {f.name for f in RedisInfoCollector(RedisInfo(unused), "probe").describe()} | set(request_watch.FAMILIES)


def test_a_real_scrape_shows_only_what_the_code_defines(system):
    defined = defined_families()
    for service in SERVICES:
        scraped = set(families(system.metrics_ports[service]))
        assert scraped <= defined, f"{service} exports undefined families: {sorted(scraped - defined)}"
        assert {"redfile_http_request_duration_seconds", "redfile_redis_command_duration_seconds", "redfile_redis_up"} <= scraped
    assert "redfile_auth_logins" in set(families(system.metrics_ports["auth"]))


def test_each_worker_listens_on_its_own_socket_so_kept_alive_connections_spread_over_them(system):
    """Two files workers, each with its own listening socket (SO_REUSEPORT): the kernel hashes new connections
    over them, so sixteen kept-alive connections never all end up on one worker (as they can, one load in six,
    on one socket the workers share: docs/operations.md)."""
    port = system.ports["files"]
    assert len(tcp_socket_owners(port)["listen"]) == 2  # one socket per worker, none in the master
    conns = [http.client.HTTPConnection("127.0.0.1", port, timeout=10) for _ in range(16)]
    try:
        for conn in conns:
            conn.request("GET", "/healthz")
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200 and not resp.will_close
        serving = tcp_socket_owners(port)
        assert len(serving["established"]) == 2 and serving["established"] == serving["listen"]
    finally:
        for conn in conns:
            conn.close()
