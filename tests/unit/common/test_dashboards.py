"""The Grafana dashboard and the alert rules shipped with the chart: every expression parses
(a real PromQL parser) and names only metrics the services export.

What the services export is read from the code that defines it: an app built by the shared
factory (request metrics and every service's common metrics), the auth and files groups on
its registry, and the Redis INFO collector of the metrics server.  The end-to-end suite
(tests/e2e/test_operations.py) checks in turn that a real scrape shows nothing else.
"""

from __future__ import annotations

import functools
import json
import re
from pathlib import Path

import fakeredis
import promql_parser
import pytest
import yaml

from redfile_common import request_watch
from redfile_common.app import create_service_app
from redfile_common.product_metrics import auth_metrics, files_metrics
from redfile_common.redis_info import RedisInfo, RedisInfoCollector
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import make_settings

ROOT = Path(__file__).resolve().parents[3]
DASHBOARD = ROOT / "helm" / "redfile" / "files" / "grafana-dashboard.json"
RULES = ROOT / "helm" / "redfile" / "files" / "prometheus-rules.yaml"
OPERATIONS = ROOT / "docs" / "operations.md"

# What Grafana substitutes before a query reaches Prometheus.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$__range": "1h", "$service": "auth|files|admin"}
SUFFIXES = {"counter": ("_total", "_created"), "histogram": ("_bucket", "_count", "_sum", "_created"), "gauge": ("",), "info": ("_info",)}


def exported_families() -> dict[str, str]:
    """family name -> type, for everything the services' metrics servers can serve."""
    app = create_service_app("probe", make_settings(ServiceSettings, "redis://127.0.0.1:1/0", service_name="files"), title="probe")
    files_metrics(app)
    auth_metrics(app)
    registry = app.extensions["redfile_metrics"].registry
    families = {f.name: f.type for f in registry.collect()}
    collector = RedisInfoCollector(RedisInfo(fakeredis.FakeRedis()), "files")  # describe() reads nothing
    families |= {f.name: f.type for f in collector.describe()}
    return families | request_watch.FAMILIES


@functools.cache
def exported_series_names() -> frozenset[str]:
    names = set()
    for family, kind in exported_families().items():
        names |= {family + suffix for suffix in SUFFIXES[kind]}
    return frozenset(names)


def selectors(expr: str) -> list[str]:
    for var, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(var, value)
    found: list[str] = []

    def visit(node):
        if isinstance(node, promql_parser.VectorSelector):
            name = node.name
            if not name:
                named = [m.value for m in node.matchers.matchers if m.name == "__name__"]
                name = named[0] if named else ""
            found.append(name)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return found


def dashboard_expressions() -> list[tuple[str, str]]:
    dash = json.loads(DASHBOARD.read_text())
    out = []
    for panel in dash["panels"]:
        for target in panel.get("targets", []):
            out.append((f"panel {panel['title']!r} {target['refId']}", target["expr"]))
    return out


def alert_rules() -> list[dict]:
    return [rule for group in yaml.safe_load(RULES.read_text())["groups"] for rule in group["rules"]]


def all_expressions() -> list[tuple[str, str]]:
    return dashboard_expressions() + [(f"alert {r['alert']}", r["expr"]) for r in alert_rules()]


def test_the_exported_names_are_the_documented_ones():
    names = exported_series_names()
    # prometheus-flask-exporter's request metrics (README, docs/operations.md)
    assert {"redfile_http_request_total", "redfile_http_request_duration_seconds_bucket"} <= names
    # a sample of each group
    assert {
        "redfile_redis_command_duration_seconds_bucket",
        "redfile_service_call_errors_total",
        "redfile_auth_logins_total",
        "redfile_files_active_uploads",
        "redfile_redis_memory_used_bytes",
        "redfile_redis_up",
    } <= names


@pytest.mark.parametrize("where, expr", all_expressions())
def test_every_expression_parses_and_names_only_exported_metrics(where, expr):
    try:
        names = selectors(expr)
    except ValueError as exc:
        raise AssertionError(f"{where}: does not parse: {exc}\n{expr}") from None
    assert names, f"{where}: names no metric"
    unknown = sorted(set(names) - exported_series_names())
    assert not unknown, f"{where}: names metrics no service exports: {unknown}"


def test_the_dashboard_shows_what_the_issue_asks_for():
    exprs = " ".join(expr for _, expr in dashboard_expressions())
    for needed in (
        "rate(redfile_http_request_total",  # request rate
        'status=~"5.."',  # error rate
        "histogram_quantile(0.99, sum by (le, service) (rate(redfile_http_request_duration_seconds_bucket",  # latency
        "redfile_files_uploaded_bytes_total",
        "redfile_files_downloaded_bytes_total",  # throughput
        "redfile_files_active_uploads",
        "redfile_redis_memory_used_bytes",
    ):
        assert needed in exprs, needed
    dash = json.loads(DASHBOARD.read_text())
    assert dash["uid"] and dash["title"]
    ids = [p["id"] for p in dash["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    for panel in dash["panels"]:
        if panel["type"] != "row":
            assert panel["datasource"]["uid"] == "${datasource}", panel["title"]


def test_every_alert_is_complete_and_has_a_runbook_section():
    rules = alert_rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names))
    for needed in (
        "RedfileHighErrorRate",
        "RedfileHighLatency",
        "RedfileRedisDown",
        "RedfileRedisNearMaxmemory",
        "RedfileReadinessFailing",
    ):
        assert needed in names
    anchors = {re.sub(r"[^a-z0-9 -]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", OPERATIONS.read_text(), re.M)}
    for rule in rules:
        assert rule["labels"]["severity"] in ("warning", "critical"), rule["alert"]
        assert rule["annotations"]["summary"] and rule["annotations"]["description"], rule["alert"]
        anchor = rule["annotations"]["runbook"].split("#", 1)[1]
        assert rule["annotations"]["runbook"].startswith("docs/operations.md#") and anchor in anchors, rule["alert"]
        if "for" in rule:
            assert re.fullmatch(r"\d+[smh]", rule["for"]), rule["alert"]


def test_the_checker_catches_a_bad_expression_and_an_unknown_metric():
    with pytest.raises(ValueError):
        selectors("sum(rate(redfile_http_request_total[5m])")
    assert "redfile_no_such_metric_total" not in exported_series_names()
    assert selectors('rate(redfile_no_such_metric_total{service=~"$service"}[$__rate_interval])') == ["redfile_no_such_metric_total"]
