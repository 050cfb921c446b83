"""Runs after the other end-to-end tests (file order): nothing secret in anything they logged."""

from __future__ import annotations

import json
import re

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
FILE_CONTENTS = ["alice only", "keep me", "tiny file", "to be removed", "hello, w", "buy milk"]


def test_no_secret_or_file_content_in_any_log_line(system, admin_password):
    logs = system.logs()
    assert len(logs.splitlines()) > 50, "the other e2e tests should have produced log lines"
    assert admin_password not in logs
    assert not re.search(r"pw-[0-9a-f]{8}-secret", logs), "a user's password was logged"
    assert "alice-password" not in logs and "carol-password" not in logs
    assert not JWT.search(logs), "a token was logged"
    assert "argon2id$" not in logs, "a password hash was logged"
    for content in FILE_CONTENTS:
        assert content not in logs, f"file content {content!r} was logged"


def test_service_log_lines_are_json_with_the_request_fields(system):
    request_lines = []
    for line in system.logs().splitlines():
        if line.startswith("{"):
            record = json.loads(line)
            if record.get("event") == "request":
                request_lines.append(record)
    assert {r["service"] for r in request_lines} >= {"auth", "files", "admin"}
    for r in request_lines[:200]:
        assert {"request_id", "method", "route", "status", "duration_ms", "timestamp"} <= set(r)
