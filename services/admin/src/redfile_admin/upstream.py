"""Typed calls to the internal APIs of auth and files (docs/contracts.md).

Everything goes through the shared ``ServiceClient``: a fresh service token
addressed to the target, timeouts, retries of 502/503/504 and connection
errors (which become 502 ``bad_gateway``), 503 passed on as 503, and the
target's 4xx errors passed through with their code and status.

A 401/403 from a target (it refused our service token) and an unreadable
success are 502s there too.  Added here: a success whose body is not the JSON
object the contract promises is a 502, not a 500 further down.
"""

from __future__ import annotations

from typing import Any, Protocol
from urllib.parse import quote

import structlog

from redfile_common.errors import ApiError

log = structlog.get_logger("redfile.admin.upstream")


class Caller(Protocol):
    """What ``redfile_common.service_client.ServiceClient`` offers."""

    def call(self, service: str, method: str, path: str, *, expect=(200,), **kwargs: Any) -> Any: ...


def segment(value: str) -> str:
    """One path segment: a username or id can never add a segment or a query.

    "." and ".." are percent-encoded too: as they are, the HTTP client would
    resolve them as dot segments (``/internal/users/..`` is ``/internal/``).
    """
    if value in (".", ".."):
        return value.replace(".", "%2E")
    return quote(value, safe="")


def _page_params(limit: int | None, cursor: str | None, **extra: str | None) -> dict[str, Any]:
    params = {"limit": limit, "cursor": cursor, **extra}
    return {k: v for k, v in params.items() if v is not None}


class _Upstream:
    service = ""

    def __init__(self, caller: Caller) -> None:
        self._caller = caller

    def _call(self, method: str, path: str, *, expect=(200,), body_required: bool = True, **kwargs: Any) -> Any:
        body = self._caller.call(self.service, method, path, expect=expect, **kwargs)
        if body_required and not isinstance(body, dict):
            log.error("upstream_bad_response", target=self.service, path=path)
            raise ApiError("bad_gateway", f"The {self.service} service sent an unexpected answer.")
        return body


class AuthUsers(_Upstream):
    """auth's ``/internal/users`` API."""

    service = "auth"

    def create(self, username: str, password: str, role: str) -> dict:
        return self._call("POST", "/internal/users", expect=(201,), json={"username": username, "password": password, "role": role})

    def list(self, limit: int | None = None, cursor: str | None = None) -> dict:
        return self._call("GET", "/internal/users", params=_page_params(limit, cursor))

    def get(self, username: str) -> dict:
        return self._call("GET", f"/internal/users/{segment(username)}")

    def update(self, username: str, changes: dict) -> dict:
        return self._call("PATCH", f"/internal/users/{segment(username)}", json=changes)

    def delete(self, username: str) -> None:
        self._call("DELETE", f"/internal/users/{segment(username)}", expect=(204,), body_required=False)

    def stats(self) -> dict:
        """``{"users": n}``."""
        return self._call("GET", "/internal/stats")


class FilesCatalogue(_Upstream):
    """files' ``/internal/files`` and ``/internal/owners`` API (files, and quotas)."""

    service = "files"

    def list(self, limit: int | None = None, cursor: str | None = None, owner: str | None = None) -> dict:
        return self._call("GET", "/internal/files", params=_page_params(limit, cursor, owner=owner))

    def delete(self, file_id: str) -> None:
        self._call("DELETE", f"/internal/files/{segment(file_id)}", expect=(204,), body_required=False)

    def stats(self, owner: str | None = None) -> dict:
        """``{"files", "bytes_stored", "active_uploads"}``: everyone's, or one owner's."""
        return self._call("GET", "/internal/stats", params={"owner": owner} if owner is not None else {})

    def quota(self, username: str) -> dict:
        return self._call("GET", f"/internal/owners/{segment(username)}/quota")

    def set_quota(self, username: str, quota_bytes: int | None, max_file_bytes: int | None) -> dict:
        body = {"quota_bytes": quota_bytes, "max_file_bytes": max_file_bytes}
        return self._call("PUT", f"/internal/owners/{segment(username)}/quota", json=body)

    def consistency(self, *, deep: bool, strict: bool, max_seconds: float) -> dict:
        """The consistency check's report (files ``GET /internal/consistency``); it ends within ``max_seconds``."""
        return self._call(
            "GET", "/internal/consistency", params={"deep": str(deep).lower(), "strict": str(strict).lower(), "max_seconds": max_seconds}
        )

    def delete_owned_by(self, username: str, account: str | None = None) -> tuple[int, int]:
        """A deleted user's files, uploads and quota gone, and the user off every share: (files deleted, shares removed).

        ``account``: the account id the name must still be, or ``"none"`` (the name must be nobody's); files answers
        409 ``conflict``, removing nothing, when another account has the name now."""
        params = {"account": account} if account else {}
        body = self._call("DELETE", f"/internal/owners/{segment(username)}/files", params=params)
        deleted, shares = body.get("deleted"), body.get("shares_removed")
        return (deleted if isinstance(deleted, int) else 0), (shares if isinstance(shares, int) else 0)
