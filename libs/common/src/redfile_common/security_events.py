"""Security events: one structured warning each, counted by name (no Flask here).

The events every service may emit, with the fields they carry (never a
password, token or key):

``login_failed``            username (or ``<unknown>``), remote, action?
``login_locked_out``        username, remote, scope (client/ip/user/busy), slowed, retry_after
``permission_denied``       user, endpoint or action
``refresh_token_reuse``     username, family (the whole family is revoked)
``security_token_rejected`` reason, token_kind (access/service): a bad or revoked
                            token; token_kind=service is a bad service token

Each line carries ``category: "security"`` so a log query can pick out all of
them, and ``redfile_security_events_total{event}`` counts them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import structlog

EVENTS = ("login_failed", "login_locked_out", "permission_denied", "refresh_token_reuse", "security_token_rejected")


class SecurityEvents:
    def __init__(self, count: Callable[[str], None] | None = None, logger=None) -> None:
        self.count = count
        self.log = logger or structlog.get_logger("redfile.security")

    def emit(self, event: str, **fields: Any) -> None:
        if event not in EVENTS:
            raise ValueError(f"unknown security event {event!r}")
        self.log.warning(event, category="security", **fields)
        if self.count:
            self.count(event)
