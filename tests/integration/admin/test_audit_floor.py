"""An admin action leaves its audit entry even when its request's budget is spent, against real Redis.

The append has ``AUDIT_WRITE_FLOOR`` seconds of its own (``deadline.floor``); when Redis still refuses it,
the action's answer is unchanged and ``redfile_audit_write_failures_total`` counts the lost entry.
"""

from __future__ import annotations

import pytest

from redfile_admin.audit import AdminAudit
from redfile_common import deadline
from redfile_common.audit import STREAM

from .conftest import USER, Recorder


@pytest.fixture
def admin(serve, make_admin):
    auth = Recorder("auth", default=(200, {**USER, "role": "admin"}))
    return make_admin(serve(auth), serve(Recorder("files")))


@pytest.fixture
def spent_before_the_audit(monkeypatch):
    """The action's budget is used up by the time it is recorded (its service calls took it all)."""
    real = AdminAudit.info

    def info(self, event, **fields):
        budget = deadline.current()
        assert budget is not None
        budget.spend(budget.left() + 1.0)
        return real(self, event, **fields)

    monkeypatch.setattr(AdminAudit, "info", info)


def failures(app) -> float:
    registry = app.extensions["redfile"].metrics._registry  # the app's private registry (no gunicorn here)
    return registry.get_sample_value("redfile_audit_write_failures_total", {"service": "admin"}) or 0.0


def test_an_action_whose_budget_is_spent_still_leaves_its_audit_entry(admin, mint, redis_client, spent_before_the_audit):
    resp = admin.test_client().post("/admin/roles", json={"username": "ann", "role": "admin"}, headers=mint(admin, "root", role="admin"))
    assert resp.status_code == 200, resp.get_json()
    entries = redis_client.xrange(STREAM)
    assert [fields[b"action"] for _, fields in entries] == [b"role.changed"]
    assert failures(admin) == 0


def test_an_audit_entry_redis_refuses_is_counted_and_the_answer_is_unchanged(admin, mint, redis_client):
    client, root = admin.test_client(), mint(admin, "root", role="admin")
    answered = client.post("/admin/roles", json={"username": "ann", "role": "admin"}, headers=root)
    redis_client.delete(STREAM)
    redis_client.set(STREAM, "not a stream")  # XADD answers WRONGTYPE
    refused = client.post("/admin/roles", json={"username": "ann", "role": "admin"}, headers=root)
    assert (refused.status_code, refused.get_json()) == (answered.status_code, answered.get_json())
    assert failures(admin) == 1
    assert redis_client.get(STREAM) == b"not a stream"
