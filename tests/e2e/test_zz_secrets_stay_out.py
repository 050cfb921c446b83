"""Runs after the whole end-to-end suite (file order, after test_zz_log_hygiene.py): no key, no
token and no password reached a log line or the audit trail.

test_zz_log_hygiene.py checks the passwords the suite chose, JWTs and file contents.  This adds
the signing keys and the app secret the system really ran with (make run keeps them in
data/dev-secrets.json), every token and password test_operations.py saw (``system.seen_secrets``),
anything shaped like a refresh token, and the audit trail read back through the admin API.
"""

from __future__ import annotations

import json
import re

from redfile_common.settings import parse_keyring

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# A refresh token is secrets.token_urlsafe(32): exactly 43 URL-safe characters.  Nothing Redfile
# logs has that shape (request ids and trace ids are hex, family ids 22 characters).
REFRESH_SHAPED = re.compile(r'"[A-Za-z0-9_-]{43}"')


def system_secrets(system) -> list[str]:
    dev = json.loads((system.root / "data" / "dev-secrets.json").read_text())
    secrets = [dev["APP_SECRET_KEY"], dev["ADMIN_PASSWORD"]]
    for ring in ("USER_TOKEN_KEYS", "SERVICE_TOKEN_KEYS"):
        secrets += [key.secret.decode() for key in parse_keyring(dev[ring], ring)]
    return secrets


def audit_trail(admin) -> str:
    items, cursor = [], None
    for _ in range(1000):
        page = admin.get("/admin/audit", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert items, "the suite should have left an audit trail"
    return json.dumps(items)


def test_no_key_token_or_password_in_any_log_line_or_the_audit_trail(system, admin, admin_password):
    logs = system.logs()
    trail = audit_trail(admin)
    seen = sorted(getattr(system, "seen_secrets", set()))
    assert seen, "test_operations.py should have recorded the tokens and passwords it saw"
    for where, text in (("log", logs), ("audit trail", trail)):
        for secret in system_secrets(system) + seen + [admin_password]:
            assert secret not in text, f"a secret reached the {where}"
        assert not JWT.search(text), f"a token reached the {where}"
        assert not REFRESH_SHAPED.search(text), f"something shaped like a refresh token reached the {where}"
        assert "argon2id$" not in text, f"a password hash reached the {where}"


def test_security_events_and_audit_failures_are_visible(system):
    records = [json.loads(line) for line in system.logs().splitlines() if line.startswith("{")]
    assert any(r.get("category") == "security" for r in records), "the suite's refusals are security events"
    assert not [r for r in records if r.get("event") == "audit_write_failed"], "every audit entry reached Redis"
