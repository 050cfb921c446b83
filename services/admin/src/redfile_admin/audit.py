"""The admin service's audit: every ``admin_*`` event of ``AdminActions`` is a log line and a trail entry.

``AdminActions`` reports each change as ``audit.info("admin_user_created",
actor=..., target=..., ...)``.  ``AdminAudit`` is that ``audit``: it writes the
structured log line and appends the matching entry to the shared
audit trail (``redfile_common.audit``, stream ``rf:audit``).  An event not in
``ACTIONS`` is logged only (a unit test checks that every event
``AdminActions`` emits is mapped).
"""

from __future__ import annotations

from typing import Any

import structlog

from redfile_common.audit import NullAuditLog

log = structlog.get_logger("redfile.admin")

# AdminActions' log event -> (audit action, is the target a username?)
ACTIONS: dict[str, tuple[str, bool]] = {
    "admin_user_created": ("user.created", True),
    "admin_user_updated": ("user.updated", True),
    "admin_user_deleted": ("user.deleted", True),
    "admin_role_changed": ("role.changed", True),
    "admin_quota_set": ("quota.changed", True),
    "admin_file_deleted": ("file.deleted", False),
}


class AdminAudit:
    """A logger-shaped object (``info``/``error``) that also writes the audit trail."""

    def __init__(self, trail=None, logger=None) -> None:
        self.trail = trail or NullAuditLog()
        self.log = logger or log

    def info(self, event: str, **fields: Any) -> None:
        self.log.info(event, **fields)
        self._record(event, "success", fields)

    def error(self, event: str, **fields: Any) -> None:
        self.log.error(event, **fields)

    def _record(self, event: str, outcome: str, fields: dict[str, Any]) -> None:
        mapped = ACTIONS.get(event)
        if mapped is None:
            return
        action, target_is_user = mapped
        details = dict(fields)
        actor = str(details.pop("actor", "") or "unknown")
        target = details.pop("target", None)
        self.trail.record(action, actor=actor, user=target if target_is_user else None, target=target, outcome=outcome, **details)
