"""The request metrics: one request, one count in the counter and one in the histogram, both
labelled with the route template -- or ``<unmatched>`` -- also for requests refused before their
route runs (a body that is not JSON, a GET with a body, an unknown path, a method the route lacks).
"""

from __future__ import annotations

import pytest

from redfile_common.app import create_service_app
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import make_settings


@pytest.fixture
def app():
    app = create_service_app("probe", make_settings(ServiceSettings, "redis://127.0.0.1:1/0", service_name="files"), title="probe")

    @app.post("/things")
    def make_thing():
        return {"ok": True}, 201

    @app.get("/things/<thing_id>")
    def get_thing(thing_id):
        return {"id": thing_id}

    @app.get("/numbers/<int:number>")
    def get_number(number):
        return {"number": number}

    @app.get("/broken")
    def broken():
        raise RuntimeError("boom")

    return app


def samples(app, method: str, status: str) -> dict[str, dict[str, float]]:
    """url_rule -> {"total": ..., "durations": ...} for the requests of this method and status."""
    registry = app.extensions["redfile_metrics"].registry
    out: dict[str, dict[str, float]] = {}
    for family in registry.collect():
        for sample in family.samples:
            if sample.labels.get("method") != method or sample.labels.get("status") != status:
                continue
            assert sample.labels.get("service") == "files", sample
            which = {
                "redfile_http_request_total": "total",
                "redfile_http_request_duration_seconds_count": "durations",
                "redfile_http_request_exceptions_total": "exceptions",
            }.get(sample.name)
            if which:
                out.setdefault(sample.labels["url_rule"], {})[which] = sample.value
    return out


@pytest.mark.parametrize(
    ("send", "method", "status", "rule"),
    [
        (lambda c: c.get("/things/abc"), "GET", "200", "/things/<thing_id>"),
        (lambda c: c.post("/things", json={"a": 1}), "POST", "201", "/things"),
        (lambda c: c.post("/things", data=b"{not json", content_type="application/json"), "POST", "400", "/things"),
        (lambda c: c.post("/things", data=b'{"a": 1, "a": 2}', content_type="application/json"), "POST", "400", "/things"),
        (lambda c: c.get("/things/abc", data=b"body"), "GET", "400", "/things/<thing_id>"),
        (lambda c: c.get("/things", data=b'{"a": 1}', content_type="application/json"), "GET", "405", "<unmatched>"),
        (lambda c: c.get("/nowhere"), "GET", "404", "<unmatched>"),
        (lambda c: c.get("/numbers/7"), "GET", "200", "/numbers/<number>"),  # the template, without converter names
        (lambda c: c.get("/broken"), "GET", "500", "/broken"),
    ],
)
def test_one_request_one_count_in_each_with_its_route(app, send, method, status, rule):
    resp = send(app.test_client())
    assert resp.status_code == int(status), resp.get_data(as_text=True)
    counts = {"total": 1.0, "durations": 1.0} | ({"exceptions": 1.0} if status == "500" else {})
    assert samples(app, method, status) == {rule: counts}


def test_health_probes_are_not_counted(app):
    client = app.test_client()
    client.get("/healthz")
    assert samples(app, "GET", "200") == {}
