"""The admin service's audit trail (AdminAudit) and its reports (stats, usage, audit pages), no network."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import redis

from redfile_admin import service as service_module
from redfile_admin.audit import ACTIONS, AdminAudit
from redfile_admin.reports import AdminReports
from redfile_admin.service import AdminActions
from redfile_admin.upstream import AuthUsers, FilesCatalogue
from redfile_common.audit import ACTIONS as TRAIL_ACTIONS
from redfile_common.audit import MemoryAuditLog
from redfile_common.errors import ApiError
from redfile_common.redis_info import RedisInfo

USER = {"username": "ann", "role": "user", "active": True, "created_at": "t", "updated_at": "t"}
QUOTA = {
    "username": "ann",
    "quota_bytes": 1000,
    "max_file_bytes": 500,
    "used_bytes": 10,
    "reserved_bytes": 0,
    "available_bytes": 990,
    "quota_is_default": False,
    "max_file_is_default": True,
}


class Caller:
    """Answers ``ServiceClient.call`` from a script: {(service, method, path): answer or ApiError}."""

    def __init__(self, script):
        self.script = script
        self.calls = []

    def call(self, service, method, path, *, expect=(200,), **kwargs):
        self.calls.append((service, method, path, kwargs.get("params")))
        answer = self.script[(service, method, path)]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Lines:
    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda event, **fields: self.lines.append((level, event, fields))


def test_every_change_admin_actions_reports_is_mapped_to_an_audit_action():
    source = Path(service_module.__file__).read_text()
    emitted = set(re.findall(r'self\.log\.info\(\s*"(admin_[a-z_]+)"', source))
    assert emitted, "AdminActions reports its changes through self.log.info"
    assert emitted <= set(ACTIONS), f"not in the audit trail: {sorted(emitted - set(ACTIONS))}"
    assert {action for action, _ in ACTIONS.values()} <= set(TRAIL_ACTIONS)


def test_admin_actions_write_the_trail_with_actor_and_subject_and_no_password():
    caller = Caller(
        {
            ("auth", "POST", "/internal/users"): USER,
            ("auth", "PATCH", "/internal/users/ann"): USER,
            ("auth", "DELETE", "/internal/users/ann"): None,
            ("files", "DELETE", "/internal/owners/ann/files"): {"deleted": 2, "shares_removed": 1},
            ("files", "DELETE", "/internal/files/f1"): None,
        }
    )
    trail, lines = MemoryAuditLog(), Lines()
    acts = AdminActions(AuthUsers(caller), FilesCatalogue(caller), audit=AdminAudit(trail, logger=lines))
    acts.create_user("root", "ann", "ann-password-1", "user")
    acts.change_role("root", "ann", "admin")
    acts.update_user("root", "ann", {"active": False, "password": "ann-password-2"})
    acts.delete_user("root", "ann")
    acts.delete_file("root", "f1")
    assert trail.actions() == ["user.created", "role.changed", "user.updated", "user.deleted", "file.deleted"]
    assert all(e["actor"] == "root" for e in trail.entries)
    assert [e["user"] for e in trail.entries] == ["ann"] * 4 + [None]
    assert trail.entries[-1]["target"] == "f1"
    assert trail.entries[2]["details"] == {"fields": ["active", "password"], "active": False}
    assert trail.entries[3]["details"] == {"files_deleted": 4, "shares_removed": 2}  # two passes, each answered 2 and 1
    assert "ann-password" not in repr(trail.entries) + repr(lines.lines)
    assert lines.lines[0][1] == "admin_user_created"  # the log lines stay


class InfoSource:
    def __init__(self, answer):
        self.answer = answer

    def info(self):
        if isinstance(self.answer, Exception):
            raise self.answer
        return self.answer


INFO = {"used_memory": 100, "maxmemory": 400, "aof_enabled": 1, "aof_last_write_status": "ok", "rdb_last_bgsave_status": "ok"}


def reports(script, info=INFO):
    caller = Caller(script)
    return AdminReports(AuthUsers(caller), FilesCatalogue(caller), redis_info=RedisInfo(InfoSource(info))), caller


def test_stats_put_together_auth_files_and_redis():
    r, caller = reports(
        {
            ("auth", "GET", "/internal/stats"): {"users": 3},
            ("files", "GET", "/internal/stats"): {"files": 7, "bytes_stored": 700, "active_uploads": 1},
        }
    )
    stats = r.stats()
    assert stats["users"] == {"total": 3}
    assert stats["files"] == {"files": 7, "bytes_stored": 700, "active_uploads": 1}
    assert stats["redis"]["up"] and stats["redis"]["memory_used_ratio"] == 0.25
    assert stats["unavailable"] == []
    assert ("files", "GET", "/internal/stats", {}) in caller.calls


@pytest.mark.parametrize(
    "files_answer",
    [ApiError("service_unavailable"), ApiError("not_found"), {"files": 1}, {"files": "7", "bytes_stored": 1, "active_uploads": 0}],
)
def test_a_part_that_fails_is_null_and_named_the_rest_still_answers(files_answer):
    r, _ = reports(
        {("auth", "GET", "/internal/stats"): {"users": 3}, ("files", "GET", "/internal/stats"): files_answer},
        info=redis.ConnectionError("down"),
    )
    stats = r.stats()
    assert stats["users"] == {"total": 3} and stats["files"] is None
    assert stats["redis"] == {"up": False}
    assert stats["unavailable"] == ["files", "redis"]


def test_usage_is_one_accounts_counts_and_quota():
    r, caller = reports(
        {
            ("auth", "GET", "/internal/users/ann"): USER,
            ("files", "GET", "/internal/stats"): {"files": 2, "bytes_stored": 10, "active_uploads": 1},
            ("files", "GET", "/internal/owners/ann/quota"): QUOTA,
        }
    )
    assert r.usage("ann") == {"username": "ann", "files": 2, "bytes_stored": 10, "active_uploads": 1, "quota": QUOTA}
    assert ("files", "GET", "/internal/stats", {"owner": "ann"}) in caller.calls


def test_usage_of_an_unknown_account_is_404_and_a_bad_answer_is_502():
    r, _ = reports({("auth", "GET", "/internal/users/bob"): ApiError("user_not_found")})
    with pytest.raises(ApiError) as exc:
        r.usage("bob")
    assert exc.value.code == "user_not_found"
    r, _ = reports({("auth", "GET", "/internal/users/ann"): USER, ("files", "GET", "/internal/stats"): {"files": 1}})
    with pytest.raises(ApiError) as exc:
        r.usage("ann")
    assert exc.value.code == "bad_gateway"


@pytest.mark.parametrize(
    "query, code",
    [
        ("action=DROP%20TABLE", "validation_error"),
        ("action=login.failed.extra", "validation_error"),
        ("since=yesterday", "validation_error"),
        ("limit=0", "validation_error"),
        ("cursor=not-an-id", "validation_error"),  # as on every list
    ],
)
def test_audit_query_is_validated_before_redis_is_read(client, as_admin, query, code):
    resp = client.get(f"/admin/audit?{query}", headers=as_admin)
    assert resp.get_json()["error"]["code"] == code, resp.get_json()
