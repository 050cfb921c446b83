"""Metrics are right under multi-worker gunicorn; health endpoints answer; logs are JSON."""

from __future__ import annotations

import json
import re

import requests


def scrape(port: int) -> str:
    resp = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=10)
    assert resp.status_code == 200
    return resp.text


def counter(text: str, name: str, **labels) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{k}="{v}"' in line for k, v in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_request_counts_are_exact_across_workers(system):
    # The exporter's per-rule series is the latency histogram; its _count is the request count.
    port = system.metrics_ports["files"]
    before = counter(scrape(port), "redfile_http_request_duration_seconds_count", url_rule="/files", status="401")
    n = 40
    session = requests.Session()
    for _ in range(n):
        session.headers["Connection"] = "close"  # spread requests over workers
        assert session.get(f"{system.base}/files", timeout=10).status_code == 401
    after = counter(scrape(port), "redfile_http_request_duration_seconds_count", url_rule="/files", status="401")
    assert after - before == n


def test_metrics_are_grouped_by_rule_not_raw_path(system, make_user):
    _, _, api = make_user()
    for i in range(3):
        api.get(f"/files/{i:032x}")
    text = scrape(system.metrics_ports["files"])
    assert 'url_rule="/files/<file_id>"' in text
    assert not re.search(r'url_rule="/files/0{20}', text)


def test_health_endpoints_on_every_service(system):
    for svc, port in system.ports.items():
        assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()["status"] == "ok"
        ready = requests.get(f"http://127.0.0.1:{port}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json()["redis"] == "up", svc


def test_request_id_crosses_the_gateway_and_lands_in_the_log(system):
    rid = "e2e-request-id-42"
    resp = requests.get(f"{system.base}/files", headers={"X-Request-ID": rid}, timeout=10)
    assert resp.headers["X-Request-ID"] == rid
    records = [json.loads(line) for line in system.logs().splitlines() if line.startswith("{")]
    mine = [r for r in records if r.get("request_id") == rid and r.get("event") == "request"]
    assert mine and mine[0]["service"] == "files" and mine[0]["status"] == 401 and mine[0]["route"] == "/files"
