"""The audit trail: one Redis Stream, ``rf:audit``, appended to by every service, read by admin.

Key space (see docs/architecture.md): ``rf:audit`` is a stream, no TTL, kept
to about ``AUDIT_MAX_LEN`` entries by every append (``XADD ... MAXLEN ~``: Redis
trims whole blocks, so it may hold a little more, never unboundedly more).  All
services append (XADD only, which a Redis ACL can grant alone); admin reads
(XREVRANGE).  Entry ids are Redis's ``<ms>-<seq>``, so they order the trail in
time and a time range is an id range.

An entry's fields, all strings, empty ones left out:
``action`` (one of ``ACTIONS``), ``service`` (who wrote it), ``actor`` (the user
or ``system``), ``user`` (the account concerned), ``target`` (a file id, a
share id, ...), ``outcome`` (``success``/``failure``/``denied``), ``request_id``,
``remote`` (client address) and ``details`` (a small JSON object).

Never passwords, tokens, keys or file contents: detail fields whose names say
they hold a secret are dropped, and callers pass names and ids only.

An append may wait ``floor`` seconds (``AUDIT_WRITE_FLOOR``) on Redis even when
its request's time budget is spent (``deadline.floor``): the entry of an action
that happened is not dropped for want of time.

Failure mode, on purpose: the action has happened when it is recorded, so a
failed append does not undo or fail it.  The entry is then written to the log
at error level (``audit_write_failed``, with every field, so nothing is lost
where logs are kept) and counted (``redfile_audit_write_failures_total``, which
an alert watches).
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, cast

import redis
import structlog

from . import deadline

STREAM = "rf:audit"

# Every action, by the service that records it.  Names are part of the API: never rename one.
ACTIONS = {
    "login.succeeded": "auth",
    "login.failed": "auth",
    "login.locked_out": "auth",
    "logout": "auth",
    "token.refresh_reused": "auth",
    "password.changed": "auth",
    "user.created": "admin (auth for the bootstrap admin)",
    "user.updated": "admin",
    "user.deleted": "admin",
    "role.changed": "admin",
    "file.deleted": "files (by the owner), admin (by an admin)",
    "share.created": "files",
    "share.revoked": "files",
    "share.used": "files",
    "quota.changed": "admin",
}
OUTCOMES = ("success", "failure", "denied")
_SECRET = re.compile(r"pass(word)?|secret|token|authorization|cookie|api_?key|signature|content$|data$", re.I)
_ID = re.compile(r"^\d{1,20}-\d{1,20}$")
MAX_SCAN = 5000  # entries one page request may look at when filtering

log = structlog.get_logger("redfile.audit")


def _clean_details(details: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in details.items() if v is not None and not _SECRET.search(k)}


class AuditLog:
    """Appends entries to ``rf:audit``.  Flask-free: request context comes from ``context()``."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        service: str,
        max_len: int,
        context: Callable[[], dict[str, str]] | None = None,
        on_written: Callable[[str], None] | None = None,
        on_failed: Callable[[], None] | None = None,
        logger=None,
        floor: float = 0.25,
    ) -> None:
        self.redis = client
        self.log = logger or log
        self.service = service
        self.max_len = max_len
        self.context = context or (lambda: {})
        self.on_written = on_written
        self.on_failed = on_failed
        self.floor = floor

    def record(
        self, action: str, *, actor: str, user: str | None = None, target: str | None = None, outcome: str = "success", **details: Any
    ) -> str | None:
        """Append one entry; its id, or None when it could not be written (then it is logged)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}: add it to redfile_common.audit.ACTIONS")
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown audit outcome {outcome!r}")
        fields = {
            "action": action,
            "service": self.service,
            "actor": actor,
            "user": user or "",
            "target": target or "",
            "outcome": outcome,
            **{k: v for k, v in self.context().items() if k in ("request_id", "remote")},
        }
        clean = _clean_details(details)
        if clean:
            fields["details"] = json.dumps(clean, separators=(",", ":"), sort_keys=True, default=str)
        fields = {k: str(v) for k, v in fields.items() if v not in ("", None)}
        stored: dict[Any, Any] = fields  # redis-py wants a dict of its own key and value union (dict is invariant)
        try:
            with deadline.floor(self.floor):
                entry_id = self.redis.xadd(STREAM, stored, maxlen=self.max_len, approximate=True)
        except (redis.RedisError, OSError) as exc:
            self.log.error("audit_write_failed", error_type=type(exc).__name__, audit=fields)
            if self.on_failed:
                self.on_failed()
            return None
        if self.on_written:
            self.on_written(action)
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)


class NullAuditLog:
    """Records nothing: the default of domain objects built without an audit trail."""

    def record(self, action: str, **kwargs: Any) -> None:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        return None


class MemoryAuditLog:
    """Keeps entries in a list: for unit tests, instead of a mock."""

    def __init__(self) -> None:
        self.entries: list[dict[str, Any]] = []

    def record(self, action: str, *, actor: str, user=None, target=None, outcome="success", **details: Any) -> str:
        if action not in ACTIONS:
            raise ValueError(f"unknown audit action {action!r}")
        self.entries.append(
            {"action": action, "actor": actor, "user": user, "target": target, "outcome": outcome, "details": _clean_details(details)}
        )
        return f"{len(self.entries)}-0"

    def actions(self) -> list[str]:
        return [e["action"] for e in self.entries]


# -- reading ------------------------------------------------------------------
@dataclass(frozen=True)
class AuditEntry:
    id: str
    time: str
    action: str
    service: str
    actor: str
    user: str | None
    target: str | None
    outcome: str
    request_id: str | None
    remote: str | None
    details: dict = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "time": self.time,
            "action": self.action,
            "service": self.service,
            "actor": self.actor,
            "user": self.user,
            "target": self.target,
            "outcome": self.outcome,
            "request_id": self.request_id,
            "remote": self.remote,
            "details": self.details,
        }

    @classmethod
    def from_stream(cls, entry_id: bytes | str, raw: dict) -> AuditEntry:
        f = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in raw.items()}
        eid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
        ms = int(eid.split("-", 1)[0])
        try:
            details = json.loads(f["details"]) if f.get("details") else {}
        except ValueError:
            details = {}
        return cls(
            id=eid,
            time=datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z",
            action=f.get("action", ""),
            service=f.get("service", ""),
            actor=f.get("actor", ""),
            user=f.get("user") or None,
            target=f.get("target") or None,
            outcome=f.get("outcome", "success"),
            request_id=f.get("request_id") or None,
            remote=f.get("remote") or None,
            details=details if isinstance(details, dict) else {},
        )

    def matches(self, user: str | None, action: str | None) -> bool:
        if user is not None and user.casefold() not in (self.actor.casefold(), (self.user or "").casefold()):
            return False
        return not (action is not None and not (self.action == action or self.action.startswith(action + ".")))


class BadCursor(ValueError):
    pass


def check_cursor(cursor: str) -> str:
    if not _ID.match(cursor):
        raise BadCursor("The cursor is not valid.")
    return cursor


def to_ms(moment: datetime) -> int:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0, int(moment.timestamp() * 1000))


class AuditReader:
    """Pages of the trail, newest first, filtered by user (actor or subject), action and time."""

    def __init__(self, client: redis.Redis, *, max_scan: int = MAX_SCAN) -> None:
        self.redis = client
        self.max_scan = max_scan

    def page(
        self,
        *,
        limit: int,
        cursor: str | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> tuple[list[AuditEntry], str | None]:
        """Up to ``limit`` matching entries older than ``cursor``, and the next page's cursor.

        A filtered page looks at most ``max_scan`` entries: it may then hold fewer than
        ``limit`` (even none) and still have a next cursor.  ``action`` matches exactly
        or as a prefix (``login`` matches ``login.failed``).  ``since``/``until`` are inclusive.
        """
        low = str(to_ms(since)) if since else "-"
        high = f"({check_cursor(cursor)}" if cursor else (str(to_ms(until)) if until else "+")
        if cursor and until:
            cursor_ms = int(cursor.split("-", 1)[0])
            if cursor_ms > to_ms(until):
                high = str(to_ms(until))
        items: list[AuditEntry] = []
        scanned = 0
        batch = min(max(limit * 2, 50), 500)
        while True:
            raw = cast("list[tuple[bytes, dict]]", self.redis.xrevrange(STREAM, max=high, min=low, count=batch))
            for entry_id, fields in raw:
                entry = AuditEntry.from_stream(entry_id, fields)
                scanned += 1
                if entry.matches(user, action):
                    items.append(entry)
                    if len(items) == limit:
                        return items, entry.id
                if scanned >= self.max_scan:
                    return items, entry.id
            if len(raw) < batch:
                return items, None
            high = f"({AuditEntry.from_stream(*raw[-1]).id}"


def request_context() -> dict[str, str]:
    """For ``AuditLog(context=...)`` in a Flask app: the request id and the client address."""
    from flask import g, has_request_context, request

    if not has_request_context():
        return {}
    return {"request_id": g.get("request_id") or "", "remote": request.remote_addr or ""}
