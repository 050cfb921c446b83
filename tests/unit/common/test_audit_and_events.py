"""The audit trail's writer and reader (on fakeredis), security events, and the Redis INFO reading."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import fakeredis
import pytest
import redis
from prometheus_client import CollectorRegistry
from redis.backoff import NoBackoff
from redis.retry import Retry

from redfile_common.audit import STREAM, AuditLog, AuditReader, BadCursor, MemoryAuditLog, NullAuditLog
from redfile_common.redis_info import RedisInfo, RedisInfoCollector, summary
from redfile_common.security_events import SecurityEvents


@pytest.fixture
def fake():
    client = fakeredis.FakeRedis()
    yield client
    client.close()


def test_an_entry_holds_who_what_and_where_and_never_a_secret(fake):
    written: list[str] = []
    trail = AuditLog(
        fake,
        service="auth",
        max_len=1000,
        context=lambda: {"request_id": "rid-1", "remote": "192.0.2.1", "other": "x"},
        on_written=written.append,
    )
    entry_id = trail.record(
        "login.succeeded", actor="alice", user="alice", role="user", password="hunter2", refresh_token="t", data="bytes"
    )
    assert entry_id and written == ["login.succeeded"]
    [(raw_id, fields)] = fake.xrange(STREAM)
    fields = {k.decode(): v.decode() for k, v in fields.items()}
    assert raw_id.decode() == entry_id
    assert fields == {
        "action": "login.succeeded",
        "service": "auth",
        "actor": "alice",
        "user": "alice",
        "outcome": "success",
        "request_id": "rid-1",
        "remote": "192.0.2.1",
        "details": json.dumps({"role": "user"}, separators=(",", ":")),
    }


def test_unknown_actions_and_outcomes_are_programming_errors(fake):
    trail = AuditLog(fake, service="auth", max_len=1000)
    with pytest.raises(ValueError):
        trail.record("user.exploded", actor="x")
    with pytest.raises(ValueError):
        trail.record("logout", actor="x", outcome="maybe")
    for other in (NullAuditLog(), MemoryAuditLog()):
        with pytest.raises(ValueError):
            other.record("user.exploded", actor="x")


class Lines:
    """A logger that keeps (level, event, fields)."""

    def __init__(self):
        self.lines = []

    def __getattr__(self, level):
        return lambda event, **fields: self.lines.append((level, event, fields))


def test_a_failed_append_is_logged_with_every_field_and_counted():
    down = redis.Redis(port=1, socket_connect_timeout=0.2, retry=Retry(NoBackoff(), 0))
    failures, lines = [], Lines()
    trail = AuditLog(down, service="admin", max_len=1000, on_failed=lambda: failures.append(1), logger=lines)
    assert trail.record("user.deleted", actor="root", user="bob", target="bob", files_deleted=2) is None
    assert failures == [1]
    [(level, event, fields)] = lines.lines
    assert (level, event) == ("error", "audit_write_failed")
    assert fields["audit"]["action"] == "user.deleted" and fields["audit"]["target"] == "bob"
    assert json.loads(fields["audit"]["details"]) == {"files_deleted": 2}


def test_the_memory_log_keeps_entries_for_unit_tests():
    trail = MemoryAuditLog()
    trail.record("logout", actor="ann", user="ann", token="secret-value")
    assert trail.actions() == ["logout"]
    assert trail.entries[0]["details"] == {}


def fill(fake, entries):
    trail = AuditLog(fake, service="auth", max_len=10_000)
    for action, actor, user in entries:
        trail.record(action, actor=actor, user=user)


def test_pages_are_newest_first_and_the_cursor_walks_to_the_end(fake):
    fill(fake, [("login.succeeded", f"u{i}", f"u{i}") for i in range(7)])
    reader = AuditReader(fake)
    seen, cursor = [], None
    for _ in range(10):
        items, cursor = reader.page(limit=3, cursor=cursor)
        seen += [e.actor for e in items]
        if cursor is None:
            break
    assert seen == [f"u{i}" for i in reversed(range(7))]


def test_filters_by_user_and_by_action_or_family(fake):
    fill(
        fake,
        [
            ("login.succeeded", "ann", "ann"),
            ("login.failed", "bob", "bob"),
            ("user.created", "root", "ann"),
            ("logout", "ann", "ann"),
            ("login.failed", "ann", "ann"),
        ],
    )
    reader = AuditReader(fake)
    ann, _ = reader.page(limit=50, user="ANN")
    assert [e.action for e in ann] == ["login.failed", "logout", "user.created", "login.succeeded"]
    logins, _ = reader.page(limit=50, action="login")
    assert [e.action for e in logins] == ["login.failed", "login.failed", "login.succeeded"]
    failed, _ = reader.page(limit=50, action="login.failed", user="bob")
    assert [(e.actor, e.action) for e in failed] == [("bob", "login.failed")]
    assert reader.page(limit=50, action="log")[0] == []  # a family is a whole segment


def test_a_time_range_is_an_id_range(fake):
    base = 1_800_000_000_000
    for i in range(5):
        fake.xadd(STREAM, {"action": "logout", "actor": f"u{i}", "service": "auth"}, id=f"{base + i * 1000}-0")
    reader = AuditReader(fake)
    since = datetime.fromtimestamp((base + 1000) / 1000, UTC)
    until = since + timedelta(seconds=2)
    items, cursor = reader.page(limit=50, since=since, until=until)
    assert [e.actor for e in items] == ["u3", "u2", "u1"] and cursor is None
    assert items[0].time == datetime.fromtimestamp((base + 3000) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    page, cursor = reader.page(limit=1, since=since, until=until)
    rest, _ = reader.page(limit=50, cursor=cursor, since=since, until=until)
    assert [e.actor for e in page + rest] == ["u3", "u2", "u1"]


def test_a_filtered_page_stops_after_max_scan_entries_and_hands_on_a_cursor(fake):
    fill(fake, [("login.succeeded", "ann", "ann")] + [("logout", "bob", "bob")] * 30)
    reader = AuditReader(fake, max_scan=10)
    items, cursor = reader.page(limit=5, user="ann")
    assert items == [] and cursor is not None
    found = []
    while cursor:
        items, cursor = reader.page(limit=5, user="ann", cursor=cursor)
        found += items
    assert [e.actor for e in found] == ["ann"]


def test_a_bad_cursor_is_refused(fake):
    with pytest.raises(BadCursor):
        AuditReader(fake).page(limit=5, cursor="0-0 +")


def test_security_events_log_a_warning_and_count():
    counted: list[str] = []
    lines = Lines()
    events = SecurityEvents(count=counted.append, logger=lines)
    events.emit("login_failed", username="ann", remote="192.0.2.1")
    assert counted == ["login_failed"]
    assert lines.lines == [("warning", "login_failed", {"category": "security", "username": "ann", "remote": "192.0.2.1"})]
    with pytest.raises(ValueError):
        events.emit("something_else")


class ScriptedInfo:
    """An INFO source: answers from a list, raising the exceptions in it."""

    def __init__(self, *answers):
        self.answers = list(answers)
        self.calls = 0

    def info(self):
        self.calls += 1
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


INFO = {
    "redis_version": "7.2.4",
    "used_memory": 500,
    "maxmemory": 1000,
    "maxmemory_policy": "noeviction",
    "connected_clients": 4,
    "loading": 0,
    "aof_enabled": 1,
    "aof_last_write_status": "ok",
    "aof_rewrite_in_progress": 0,
    "rdb_last_bgsave_status": "err",
    "rdb_changes_since_last_save": 12,
    "rdb_last_save_time": 1_800_000_000,
}


def test_info_is_read_once_per_ttl():
    now = [0.0]
    source = ScriptedInfo(INFO, redis.ConnectionError("down"))
    info = RedisInfo(source, ttl=5, clock=lambda: now[0])
    assert info.read() == INFO and info.read() == INFO and source.calls == 1
    now[0] = 6
    assert info.read() is None and source.calls == 2
    now[0] = 7
    assert info.read() is None and source.calls == 2  # a failure is cached too: no hammering a dead Redis


def test_summary_and_gauges_from_one_reading():
    s = summary(INFO)
    assert s["up"] and s["memory_used_ratio"] == 0.5 and s["maxmemory_policy"] == "noeviction"
    assert s["persistence"]["aof_enabled"] and not s["persistence"]["rdb_last_bgsave_ok"]
    assert s["persistence"]["rdb_last_save_time"] == "2027-01-15T08:00:00Z"
    assert summary(None) == {"up": False}
    assert summary({**INFO, "maxmemory": 0})["memory_used_ratio"] is None

    now = [0.0]
    registry = CollectorRegistry()
    info = RedisInfo(ScriptedInfo(INFO, redis.TimeoutError("slow")), ttl=5, clock=lambda: now[0])
    registry.register(RedisInfoCollector(info, "admin"))
    get = lambda name: registry.get_sample_value(name, {"service": "admin"})  # noqa: E731
    assert get("redfile_redis_up") == 1 and get("redfile_redis_memory_used_bytes") == 500
    assert get("redfile_redis_rdb_last_bgsave_ok") == 0 and get("redfile_redis_aof_last_write_ok") == 1
    now[0] = 10
    assert get("redfile_redis_up") == 0 and get("redfile_redis_memory_used_bytes") is None
