"""One trace follows a request from one service to another and into Redis.

The first test uses two bare apps of the shared factory; the second the real admin, auth and
files apps: one admin request (deleting a user) calls auth and files, and every span of it, in
all three services and in Redis, belongs to one trace with the right parents.  Spans are
recorded in memory (``spans``, from redfile_dev.testing).
"""

from collections.abc import Callable
from typing import Any

import pytest
import requests

from redfile_common.app import create_service_app, redfile
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import auth_header, make_settings, settings_overrides, user_token


@pytest.fixture
def traced(redis_url, serve):
    callee = create_service_app("callee", make_settings(ServiceSettings, redis_url, service_name="files"), title="callee")

    @callee.get("/internal/ping")
    def ping():
        redfile().redis.get("trace-probe")
        return {"ok": True}

    caller = create_service_app(
        "caller", make_settings(ServiceSettings, redis_url, service_name="admin", files_url=serve(callee.wsgi_app)), title="caller"
    )

    @caller.get("/admin/probe")
    def probe():
        return redfile().services.call("files", "GET", "/internal/ping")

    return caller


def by_kind(spans):
    kinds: dict[str, list] = {}
    for span in spans:
        kinds.setdefault(span.kind.name, []).append(span)
    return kinds


def is_redis(span) -> bool:
    return span.attributes.get("db.system") == "redis" or span.attributes.get("db.system.name") == "redis"


@pytest.mark.topology("standalone", "sentinel")  # counts the spans of one server's commands; a cluster's client adds its own
def test_one_trace_spans_both_services_and_redis(traced, spans):
    resp = traced.test_client().get("/admin/probe")
    assert resp.status_code == 200, resp.json
    finished = spans.get_finished_spans()
    servers = by_kind(finished)["SERVER"]
    assert len(servers) == 2
    outer = next(s for s in servers if s.parent is None)
    # Only the request's trace: a daemon thread of another test's app in this process (a sweeper) may record
    # a Redis span of its own meanwhile, as the root of another trace.
    mine = [s for s in finished if s.context.trace_id == outer.context.trace_id]
    assert all(s in mine for s in servers) and all(s in mine for s in finished if s.parent is not None), "one trace"
    kinds = by_kind(mine)
    client_span = next(s for s in kinds["CLIENT"] if s.name.startswith("GET") and s.parent and s.parent.span_id == outer.context.span_id)
    inner = next(s for s in servers if s is not outer)
    assert inner.parent.span_id == client_span.context.span_id
    redis_span = next(s for s in kinds["CLIENT"] if "GET" in s.name and is_redis(s))
    assert redis_span.parent.span_id == inner.context.span_id


class LateApp:
    app: Callable[..., Any] | None = None

    def __call__(self, environ, start_response):
        assert self.app is not None, "the app is assigned before the first request"
        return self.app(environ, start_response)


@pytest.fixture
def system(redis_url, redis_client, serve):
    """The real auth and files apps on loopback; the real admin app as a test client."""
    from redfile_admin import create_app as create_admin
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app as create_files

    auth_slot, files_slot = LateApp(), LateApp()
    urls = {"auth_url": serve(auth_slot), "files_url": serve(files_slot)}
    auth_slot.app = create_auth(
        **settings_overrides(
            redis_url, **urls, admin_password="bootstrap-" + "p" * 12, argon2_time_cost=1, argon2_memory_kib=64, argon2_parallelism=1
        )
    )
    files_slot.app = create_files(**settings_overrides(redis_url, **urls, sweep_interval=0))  # no sweeper thread outliving the test
    admin = create_admin(**settings_overrides(redis_url, **urls))
    root = auth_header(user_token(redfile(admin).settings, redis_client, "root", role="admin"))
    return admin.test_client(), root, urls


@pytest.mark.topology("standalone", "sentinel")  # counts the spans of one server's commands; a cluster's client adds its own
def test_one_admin_request_is_one_trace_across_admin_auth_files_and_redis(system, spans):
    admin, root, urls = system
    created = admin.post("/admin/users", json={"username": "tracy", "password": "tracy-password-1", "role": "user"}, headers=root)
    assert created.status_code == 201, created.get_json()
    login = requests.post(f"{urls['auth_url']}/auth/login", json={"username": "tracy", "password": "tracy-password-1"}, timeout=10)
    assert login.status_code == 200
    spans.clear()

    assert admin.delete("/admin/users/tracy", headers=root).status_code == 204

    finished = spans.get_finished_spans()
    root_span = next(s for s in finished if s.kind.name == "SERVER" and s.name == "DELETE /admin/users/<username>")
    assert root_span.parent is None
    trace = [s for s in finished if s.context.trace_id == root_span.context.trace_id]
    by_id = {s.context.span_id: s for s in trace}

    def children(parent, kind=None):
        return [s for s in trace if s.parent and s.parent.span_id == parent.context.span_id and (kind is None or s.kind.name == kind)]

    calls = [s for s in children(root_span, "CLIENT") if not is_redis(s)]
    # admin → auth (disable), → files (remove the user's data), → auth (delete), → files (what a request in flight left)
    assert len(calls) == 4, [s.name for s in calls]
    servers = {s.name: s for s in trace if s.kind.name == "SERVER" and s is not root_span}
    auth_server = servers["DELETE /internal/users/<username>"]
    files_server = servers["DELETE /internal/owners/<username>/files"]
    assert by_id[auth_server.parent.span_id] in calls and by_id[files_server.parent.span_id] in calls
    assert auth_server.parent.span_id != files_server.parent.span_id
    # and into Redis, in each of the three services, under that service's request span
    for server in (root_span, auth_server, files_server):
        assert any(is_redis(s) for s in children(server)), f"no Redis span under {server.name}"
    assert {s.context.trace_id for s in (root_span, auth_server, files_server, *calls)} == {root_span.context.trace_id}
