"""What auth's sessions count, warn about and audit: the domain without Flask, an in-memory audit log.

The deployed app's metrics and audit trail, refresh-token rotation included, are in test_observability.py."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from prometheus_client import CollectorRegistry

from redfile_auth.sessions.limits import LoginLimits
from redfile_auth.sessions.service import Sessions
from redfile_common.audit import MemoryAuditLog
from redfile_common.errors import ApiError
from redfile_common.limiter import FailureLimiter
from redfile_common.product_metrics import AuthMetrics
from redfile_common.security_events import SecurityEvents

ADDR = "192.0.2.7"


class Lines:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda event, **fields: self.lines.append((level, event, fields))

    def events(self):
        return [event for _, event, _ in self.lines]


@pytest.fixture
def observed(redis_client, store, passwords, user_tokens, users):
    registry, trail, lines = CollectorRegistry(), MemoryAuditLog(), Lines()
    events = SecurityEvents(logger=lines)
    limits = LoginLimits(FailureLimiter(redis_client, window=60), per_client=3, per_user=10, per_ip=50, events=events)
    sessions = Sessions(
        store,
        passwords,
        limits,
        user_tokens,
        access_ttl=900,
        refresh_ttl=3600,
        metrics=AuthMetrics("auth", registry),
        events=events,
        audit=trail,
    )
    users.create("ann", "ann-password-1")

    return Observed(sessions, registry, trail, lines)


@dataclass
class Observed:
    sessions: Sessions
    registry: CollectorRegistry
    trail: MemoryAuditLog
    lines: Lines

    def count(self, metric: str, result: str) -> float | None:
        return self.registry.get_sample_value(metric, {"service": "auth", "result": result})


def test_logins_are_counted_and_audited_by_result(observed):
    s = observed.sessions
    s.login("ann", "ann-password-1", ADDR)
    with pytest.raises(ApiError):
        s.login("ann", "wrong-password", ADDR)
    assert observed.count("redfile_auth_logins_total", "success") == 1
    assert observed.count("redfile_auth_logins_total", "failure") == 1
    assert observed.trail.actions() == ["login.succeeded", "login.failed"]
    failed = observed.trail.entries[1]
    assert (failed["actor"], failed["user"], failed["outcome"], failed["details"]) == ("ann", "ann", "failure", {"reason": "bad_password"})
    assert observed.lines.lines[-1] == (
        "warning",
        "login_failed",
        {"category": "security", "username": "ann", "remote": ADDR, "reason": "bad_password"},
    )


def test_a_name_that_is_not_an_account_is_counted_and_audited_but_never_named(observed):
    with pytest.raises(ApiError):
        observed.sessions.login("my-secret-passw0rd", "ann-password-1", ADDR)
    assert observed.count("redfile_auth_logins_total", "failure") == 1
    [entry] = observed.trail.entries
    assert (entry["action"], entry["actor"], entry["user"], entry["details"]) == (
        "login.failed",
        "<unknown>",
        None,
        {"reason": "unknown_user"},
    )
    assert "my-secret-passw0rd" not in repr(observed.lines.lines) + repr(observed.trail.entries)


def test_a_lockout_is_audited_once_and_every_refusal_is_counted_and_warned(observed):
    s = observed.sessions
    for _ in range(3):
        with pytest.raises(ApiError):
            s.login("ann", "wrong-password", ADDR)
    for _ in range(2):
        with pytest.raises(ApiError) as exc:
            s.login("ann", "ann-password-1", ADDR)
        assert exc.value.code == "too_many_requests"
    assert observed.trail.actions() == ["login.failed", "login.failed", "login.failed", "login.locked_out"]
    assert observed.trail.entries[-1]["details"] == {"scope": "client"} and observed.trail.entries[-1]["outcome"] == "denied"
    assert observed.count("redfile_auth_logins_total", "failure") == 3
    assert observed.count("redfile_auth_logins_total", "locked_out") == 2
    assert observed.lines.events().count("login_locked_out") == 2


def test_logout_and_password_change_are_audited(observed, user_tokens):
    s = observed.sessions
    pair = s.login("ann", "ann-password-1", ADDR)
    claims = user_tokens.verify(pair.access_token)
    with pytest.raises(ApiError):
        s.change_password("ann", "wrong-password", "ann-password-2", ADDR)
    s.change_password("ann", "ann-password-1", "ann-password-2", ADDR)
    s.logout(claims, pair.refresh_token)
    assert observed.trail.actions() == ["login.succeeded", "password.changed", "password.changed", "logout"]
    assert [e["outcome"] for e in observed.trail.entries[1:3]] == ["failure", "success"]
    assert observed.trail.entries[-1]["details"] == {"refresh_family_ended": True}
