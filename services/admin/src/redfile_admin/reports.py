"""What an admin can look at: system stats, one user's usage, the audit trail (no Flask here).

* ``stats``: accounts (auth ``GET /internal/stats``), files, bytes stored and
  uploads in progress (files ``GET /internal/stats``), and Redis memory and
  persistence (INFO, read through ``RedisInfo``: at most once per
  ``REDIS_INFO_TTL``, never waiting more than ``REDIS_INFO_TIMEOUT``).  Each part
  is fetched on its own: when auth or files does not answer, its part is null
  and named in ``unavailable``, so the page still helps when something is down.
* ``usage``: one account's files, bytes, uploads in progress and quota.
* ``audit``: pages of the audit trail, newest first, filtered.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

import structlog

from redfile_admin.upstream import AuthUsers, FilesCatalogue
from redfile_common.audit import AuditReader, BadCursor
from redfile_common.errors import ApiError
from redfile_common.redis_info import RedisInfo, summary

log = structlog.get_logger("redfile.admin")

FILES_COUNTS = ("files", "bytes_stored", "active_uploads")


def _counts(body: dict, service: str) -> dict[str, int]:
    """The integer fields the contract promises; anything else is the target's bug (502)."""
    try:
        values = {k: body[k] for k in FILES_COUNTS}
    except KeyError:
        values = {}
    if len(values) != len(FILES_COUNTS) or not all(isinstance(v, int) and not isinstance(v, bool) for v in values.values()):
        log.error("upstream_bad_response", target=service, path="/internal/stats")
        raise ApiError("bad_gateway", f"The {service} service sent an unexpected answer.")
    return values


class AdminReports:
    def __init__(
        self, users: AuthUsers, files: FilesCatalogue, *, redis_info: RedisInfo | None = None, reader: AuditReader | None = None
    ) -> None:
        self.users = users
        self.files = files
        self.redis_info = redis_info
        self.reader = reader

    def stats(self) -> dict:
        unavailable: list[str] = []
        users = self._part("auth", unavailable, lambda: {"total": int(self.users.stats()["users"])})
        files = self._part("files", unavailable, lambda: _counts(self.files.stats(), "files"))
        redis = summary(self.redis_info.read() if self.redis_info else None)
        if not redis["up"]:
            unavailable.append("redis")
        return {"users": users, "files": files, "redis": redis, "unavailable": unavailable}

    def usage(self, username: str) -> dict:
        """404 ``user_not_found`` unless auth knows the account."""
        user = self.users.get(username)
        name = user.get("username", username)
        counts = _counts(self.files.stats(owner=name), "files")
        return {"username": name, **counts, "quota": self.files.quota(name)}

    def audit(
        self,
        *,
        limit: int = 50,
        cursor: str | None = None,
        user: str | None = None,
        action: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> dict:
        if self.reader is None:
            raise ApiError("service_unavailable")
        try:
            entries, next_cursor = self.reader.page(limit=limit, cursor=cursor, user=user, action=action, since=since, until=until)
        except BadCursor:
            raise ApiError("validation_error", "The cursor is not valid.", details={"query": {"cursor": ["Not a valid cursor."]}}) from None
        return {"items": [e.to_dict() for e in entries], "next_cursor": next_cursor}

    @staticmethod
    def _part(service: str, unavailable: list[str], fetch: Callable[[], dict]) -> dict | None:
        try:
            return fetch()
        except (ApiError, KeyError, TypeError, ValueError) as exc:
            log.warning("admin_stats_part_unavailable", target=service, code=getattr(exc, "code", type(exc).__name__))
            unavailable.append(service)
            return None
