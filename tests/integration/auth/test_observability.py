"""The auth app as deployed code counts, warns and audits (real Redis, the app's own registry)."""

from __future__ import annotations

from redfile_common.app import redfile
from redfile_common.audit import AuditReader
from redfile_dev.testing import auth_header, service_token

from .conftest import ADDR, bearer


def metric(app, name, **labels):
    registry = app.extensions["redfile_metrics"].registry
    return registry.get_sample_value(name, {"service": "auth", **labels}) or 0.0


def trail(redis_client, **filters):
    return [e.action for e in AuditReader(redis_client).page(limit=100, **filters)[0]]


def test_logins_and_refresh_reuse_in_metrics_logs_and_the_audit_trail(app, create_user, login, session, client, redis_client, events):
    create_user("kim")
    assert login("kim", "wrong-password").status_code == 401
    pair = session("kim")
    assert client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 200
    assert client.post("/auth/refresh", json={"refresh_token": pair["refresh_token"]}).status_code == 401

    assert metric(app, "redfile_auth_logins_total", result="failure") == 1
    assert metric(app, "redfile_auth_logins_total", result="success") == 1
    assert metric(app, "redfile_auth_refreshes_total", result="success") == 1
    assert metric(app, "redfile_auth_refreshes_total", result="reuse") == 1
    assert metric(app, "redfile_security_events_total", event="refresh_token_reuse") == 1
    assert trail(redis_client, user="kim") == ["token.refresh_reused", "login.succeeded", "login.failed"]
    entry = AuditReader(redis_client).page(limit=1, user="kim", action="login.succeeded")[0][0]
    assert entry.service == "auth" and entry.remote == ADDR and entry.request_id
    [reuse] = events.named("refresh_token_reuse")
    assert reuse["category"] == "security" and reuse["level"] == "warning"
    assert pair["refresh_token"] not in repr(AuditReader(redis_client).page(limit=100)[0])


def test_logout_is_audited(create_user, session, client, redis_client):
    create_user("lee")
    pair = session("lee")
    assert client.post("/auth/logout", json={"refresh_token": pair["refresh_token"]}, headers=bearer(pair)).status_code == 204
    assert trail(redis_client, user="lee", action="logout") == ["logout"]


def test_token_rejections_are_counted_by_kind_and_reason_and_warned(app, client, settings, events):
    assert client.get("/auth/me", headers=auth_header("not-a-jwt")).status_code == 401
    forged = service_token(settings, "files", "admin")  # addressed to another service
    assert client.get("/internal/users", headers=auth_header(forged)).status_code == 401
    assert metric(app, "redfile_token_rejections_total", kind="access", reason="malformed") == 1
    assert metric(app, "redfile_token_rejections_total", kind="service", reason="wrong_audience") == 1
    kinds = {(e["token_kind"], e["reason"]) for e in events.named("security_token_rejected")}
    assert kinds == {("access", "malformed"), ("service", "wrong_audience")}


def test_permission_denied_is_a_security_event(app, create_user, session, client, events):
    # auth has no admin-only route; the shared decorator is exercised through a probe route.
    from redfile_common.security import login_required

    @app.get("/auth/probe-admin")
    @login_required(admin=True)
    def probe():
        return {}

    create_user("max")
    assert client.get("/auth/probe-admin", headers=bearer(session("max"))).status_code == 403
    [denied] = events.named("permission_denied")
    assert denied["user"] == "max" and denied["category"] == "security"
    assert metric(app, "redfile_security_events_total", event="permission_denied") == 1


def test_internal_stats_counts_accounts(client, svc, create_user):
    before = client.get("/internal/stats", headers=svc).json["users"]
    create_user("ned")
    assert client.get("/internal/stats", headers=svc).json == {"users": before + 1}


def test_the_bootstrap_admin_is_audited_once(app, make_app, redis_client):
    make_app()  # a second worker starting: the admin exists, nothing new to audit
    created = AuditReader(redis_client).page(limit=10, action="user.created")[0]
    assert [(e.actor, e.user) for e in created] == [("system", "admin")]


def test_redis_commands_are_timed_on_the_apps_registry(app, login):
    login("nobody-here", "whatever-password")
    assert metric(app, "redfile_redis_command_duration_seconds_count", command="MULTI") >= 1  # the failure counters
    assert metric(app, "redfile_readiness_checks_total", result="ok") == 0
    assert app.test_client().get("/readyz").status_code == 200
    assert metric(app, "redfile_readiness_checks_total", result="ok") == 1
    assert redfile(app).metrics.service == "auth"
