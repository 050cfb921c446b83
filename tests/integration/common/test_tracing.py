"""One trace follows a request from one service to another and into Redis."""

import threading

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from werkzeug.serving import make_server

from redfile_common.app import create_service_app, redfile
from redfile_common.settings import ServiceSettings
from redfile_common.testing import make_settings
from redfile_common.tracing import init_tracing

exporter = InMemorySpanExporter()


@pytest.fixture
def traced(redis_url):
    init_tracing("test", span_processor=SimpleSpanProcessor(exporter))
    exporter.clear()
    callee = create_service_app("callee", make_settings(ServiceSettings, redis_url, service_name="files"), title="callee")

    @callee.get("/internal/ping")
    def ping():
        redfile().redis.get("trace-probe")
        return {"ok": True}

    server = make_server("127.0.0.1", 0, callee.wsgi_app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    caller = create_service_app(
        "caller",
        make_settings(ServiceSettings, redis_url, service_name="admin", files_url=f"http://127.0.0.1:{server.server_port}"),
        title="caller",
    )

    @caller.get("/admin/probe")
    def probe():
        return redfile().services.call("files", "GET", "/internal/ping")

    yield caller
    server.shutdown()


def test_one_trace_spans_both_services_and_redis(traced):
    resp = traced.test_client().get("/admin/probe")
    assert resp.status_code == 200, resp.json
    spans = exporter.get_finished_spans()
    by_kind = {}
    for span in spans:
        by_kind.setdefault(span.kind.name, []).append(span)
    servers = by_kind["SERVER"]
    assert len(servers) == 2
    trace_ids = {s.context.trace_id for s in spans}
    assert len(trace_ids) == 1, "every span belongs to the one trace"
    outer = next(s for s in servers if s.parent is None)
    client_span = next(s for s in by_kind["CLIENT"] if s.name.startswith("GET") and s.parent and s.parent.span_id == outer.context.span_id)
    inner = next(s for s in servers if s is not outer)
    assert inner.parent.span_id == client_span.context.span_id
    redis_span = next(s for s in by_kind["CLIENT"] if "GET" in s.name and s.attributes.get("db.system") == "redis")
    assert redis_span.parent.span_id == inner.context.span_id
