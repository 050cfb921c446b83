import json
import logging

import pytest
import redis

from redfile_common.errors import ApiError
from redfile_dev.testing import settings_overrides


@pytest.fixture
def app():
    from redfile_files import create_app

    # An unreachable Redis: these tests need none, and one test proves the 503 path.
    app = create_app(**settings_overrides("redis://127.0.0.1:1/0", redis_retries=0, redis_connect_timeout=0.2))

    @app.get("/t/api-error")
    def api_error():
        raise ApiError("chunk_conflict", details={"index": 3})

    @app.get("/t/boom")
    def boom():
        raise RuntimeError("internal detail that must not leak")

    @app.get("/t/redis")
    def redis_down():
        app.extensions["redfile"].redis.get("x")

    @app.get("/t/oom")
    def oom():
        # what redis-py raises for Redis's "-OOM ..." reply: its own class, the "OOM" prefix stripped
        raise redis.exceptions.OutOfMemoryError("command not allowed when used memory > 'maxmemory'.")

    @app.get("/t/cluster/<kind>")
    def cluster_unavailable(kind):
        # what redis-py's cluster client raises while a primary with no replica is down or a slot moves, or
        # for a redirect it did not follow (a command sent past it)
        raise {
            "down": redis.exceptions.ClusterDownError("The cluster is down"),
            "master-down": redis.exceptions.MasterDownError("Link with MASTER is down and replica-serve-stale-data is set to 'no'."),
            "not-covered": redis.exceptions.SlotNotCoveredError("Command # 1 (GET x) of pipeline caused error: slot 16287 is not covered"),
            "try-again": redis.exceptions.TryAgainError("Multiple keys request during rehashing of slot"),
            "moved": redis.exceptions.MovedError("3999 127.0.0.1:7002"),
            "ask": redis.exceptions.AskError("3999 127.0.0.1:7002"),
        }[kind]

    return app


def test_domain_error_shape(app):
    resp = app.test_client().get("/t/api-error")
    assert resp.status_code == 409
    assert resp.json == {
        "error": {"code": "chunk_conflict", "message": "A different chunk is already stored at this index.", "details": {"index": 3}}
    }


def test_unknown_exception_is_generic_500_without_internal_text(app, capsys):
    resp = app.test_client().get("/t/boom")
    assert resp.status_code == 500
    assert resp.json["error"]["code"] == "internal_error"
    assert "internal detail" not in resp.get_data(as_text=True)


def test_http_errors_use_the_same_shape(app):
    client = app.test_client()
    assert client.get("/no/such/path").json["error"]["code"] == "not_found"
    resp = client.post("/healthz")
    assert resp.status_code == 405 and resp.json["error"]["code"] == "method_not_allowed"


def test_redis_outage_is_503_with_retry_after(app):
    resp = app.test_client().get("/t/redis")
    assert resp.status_code == 503
    assert resp.headers["Retry-After"]
    assert resp.json["error"]["code"] == "service_unavailable"
    ready = app.test_client().get("/readyz")
    assert ready.status_code == 503


@pytest.mark.parametrize("kind", ["down", "master-down", "not-covered", "try-again", "moved", "ask"])
def test_a_cluster_that_cannot_serve_a_slot_is_503_with_retry_after(app, kind):
    resp = app.test_client().get(f"/t/cluster/{kind}")
    assert resp.status_code == 503, resp.json
    assert resp.json["error"]["code"] == "service_unavailable" and resp.headers["Retry-After"]


def test_redis_out_of_memory_is_507(app):
    resp = app.test_client().get("/t/oom")
    assert resp.status_code == 507 and resp.json["error"]["code"] == "insufficient_storage"


@pytest.mark.parametrize("kind", ["moved", "ask", "try-again"])
def test_a_slot_moving_is_a_503_to_try_again_in_a_second(app, kind):
    resp = app.test_client().get(f"/t/cluster/{kind}")
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "1"


def test_request_id_is_echoed_or_generated(app):
    client = app.test_client()
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["X-Request-ID"] == "abc-123"
    generated = client.get("/healthz", headers={"X-Request-ID": "bad id <script>"}).headers["X-Request-ID"]
    assert generated != "bad id <script>" and len(generated) == 32


def test_request_line_is_structured_and_masks_secrets(app, capsys):
    logging.getLogger().setLevel(logging.INFO)
    client = app.test_client()
    client.get("/t/api-error", headers={"X-Request-ID": "rid-1", "Authorization": "Bearer SECRET-TOKEN"})
    import structlog

    structlog.get_logger("t").info("probe", password="hunter2", access_token="tok", note="fine")
    out = capsys.readouterr().out
    lines = [json.loads(text) for text in out.splitlines() if text.startswith("{")]
    request_lines = [entry for entry in lines if entry.get("event") == "request" and entry.get("request_id") == "rid-1"]
    assert request_lines, out
    line = request_lines[0]
    for field in ("service", "request_id", "method", "route", "status", "duration_ms"):
        assert field in line
    assert line["route"] == "/t/api-error" and line["status"] == 409 and line["service"] == "files"
    probe = next(entry for entry in lines if entry.get("event") == "probe")
    assert probe["password"] == "[masked]" and probe["access_token"] == "[masked]" and probe["note"] == "fine"
    assert "SECRET-TOKEN" not in out and "hunter2" not in out


def test_malformed_json_is_invalid_json_both_through_flask_and_through_schemas(app):
    from apiflask import Schema
    from apiflask.fields import String

    class Body(Schema):
        name = String(required=True)

    @app.post("/t/schema")
    @app.input(Body, arg_name="body")
    def with_schema(body):
        return body

    @app.post("/t/plain")
    def plain():
        from flask import request

        return request.get_json()

    client = app.test_client()
    for path in ("/t/schema", "/t/plain"):
        resp = client.post(path, data="{not json", content_type="application/json")
        assert resp.status_code == 400, path
        assert resp.json["error"]["code"] == "invalid_json", (path, resp.json)
    assert client.post("/t/schema", json={}).json["error"]["code"] == "validation_error"


def test_lone_surrogates_in_json_are_refused_before_any_route(app):
    @app.post("/t/echo")
    def echo():
        from flask import request

        return {"len": len(request.get_json()["s"])}

    client = app.test_client()
    for body in ('{"s": "\\ud800"}', '{"s": ["ok", {"k": "x\\udfff"}]}', '{"\\udc00": 1, "s": "x"}'):
        resp = client.post("/t/echo", data=body, content_type="application/json")
        assert resp.status_code == 400 and resp.json["error"]["code"] == "invalid_json", body
    # a proper pair (an emoji) and an escaped backslash are fine
    assert client.post("/t/echo", data='{"s": "\\ud83d\\ude00"}', content_type="application/json").json == {"len": 1}
    assert client.post("/t/echo", data='{"s": "\\\\ud800"}', content_type="application/json").json == {"len": 6}


def test_a_request_refused_by_a_hook_still_has_its_request_id_and_log_line(app, capsys):
    logging.getLogger().setLevel(logging.INFO)
    resp = app.test_client().get("/t/api-error", data="{not json", content_type="application/json", headers={"X-Request-ID": "rid-hook"})
    assert resp.status_code == 400 and resp.headers["X-Request-ID"] == "rid-hook"
    lines = [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")]
    assert [entry["status"] for entry in lines if entry.get("event") == "request" and entry.get("request_id") == "rid-hook"] == [400]


def test_the_request_line_names_the_route_as_the_metrics_do(app, capsys):
    """``/files/<file_id>``, not the routing's ``/files/<file:file_id>``: one name to filter logs and metrics on."""
    logging.getLogger().setLevel(logging.INFO)

    @app.get("/t/item/<int:number>")
    def item(number):
        return {"number": number}

    client = app.test_client()
    assert client.get("/t/item/7", headers={"X-Request-ID": "rid-route"}).status_code == 200
    client.get("/no/such/route", headers={"X-Request-ID": "rid-none"})
    lines = [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")]
    routes = {entry["request_id"]: entry["route"] for entry in lines if entry.get("event") == "request"}
    assert routes["rid-route"] == "/t/item/<number>" and routes["rid-none"] == "<unmatched>"
