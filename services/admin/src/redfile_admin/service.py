"""What an admin may do, and the audit trail of it; no Flask here.

The admin service owns no data: every action is a call to auth or files
(``upstream``).  This module adds the rules that belong to *administration*
rather than to either store:

* an admin may not delete, demote or disable their own account, so a
  system is never left without an admin by one careless request (409);
* deleting a user disables the account first (so they can no longer log in
  or upload, and nobody can create the name again), then removes their
  files, uploads, quota and every share with them (files), then the account,
  then (once more) whatever a request in flight stored meanwhile.  Each call
  to files names the account's id: files removes nothing (409) once auth
  gives the name to another account, so an account created under the name
  after the deletion keeps what it stores.  If a step fails the answer is an
  error, and repeating the request finishes the job (when the account is
  already gone, auth answers ``user_not_found`` and what files still holds
  for the name is removed, only while no other account has it).

Every change is logged as a structured ``admin_*`` event with the acting
admin and the target; passwords are never logged.
"""

from __future__ import annotations

from typing import Any, Protocol

import structlog

from redfile_admin.upstream import AuthUsers, FilesCatalogue
from redfile_common import deadline
from redfile_common.errors import ApiError

log = structlog.get_logger("redfile.admin")


class EventLog(Protocol):
    """Where the ``admin_*`` events go: a structlog logger, or ``AdminAudit`` (the log and the audit trail)."""

    def info(self, event: str, **fields: Any) -> Any: ...

    def error(self, event: str, **fields: Any) -> Any: ...


def same_account(actor: str, username: str) -> bool:
    # Case-insensitive on purpose: if auth folds case, "Root" is "root"; if it
    # does not, the worst outcome is a refusal an admin can work around.
    return actor.strip().casefold() == username.strip().casefold()


def refuse_self_harm(actor: str, username: str, *, delete: bool = False, role: str | None = None, active: bool | None = None) -> None:
    """Raise 409 ``conflict`` when an admin would delete, demote or disable their own account."""
    if not same_account(actor, username):
        return
    if delete:
        raise ApiError("conflict", "You cannot delete your own account; ask another admin.")
    if role is not None and role != "admin":
        raise ApiError("conflict", "You cannot remove your own admin role; ask another admin.")
    if active is False:
        raise ApiError("conflict", "You cannot disable your own account; ask another admin.")


def consistency_budget(service_timeout: float) -> float:
    """Seconds the files service may spend on a consistency check: it must answer before our read
    timeout (``SERVICE_TIMEOUT``) runs out, and within the 55 s its endpoint allows."""
    return max(1.0, min(55.0, service_timeout - 3.0))


class AdminActions:
    def __init__(self, users: AuthUsers, files: FilesCatalogue, *, audit: EventLog | None = None, service_timeout: float = 10.0) -> None:
        self.users = users
        self.files = files
        self.log = audit or log
        self.service_timeout = service_timeout  # SERVICE_TIMEOUT: what bounds the consistency check's time

    # -- users ----------------------------------------------------------------
    def create_user(self, actor: str, username: str, password: str, role: str) -> dict:
        user = self.users.create(username, password, role)
        self.log.info("admin_user_created", actor=actor, target=user.get("username", username), role=user.get("role", role))
        return user

    def list_users(self, limit: int | None = None, cursor: str | None = None) -> dict:
        return self.users.list(limit, cursor)

    def get_user(self, username: str) -> dict:
        return self.users.get(username)

    def change_role(self, actor: str, username: str, role: str) -> dict:
        refuse_self_harm(actor, username, role=role)
        user = self.users.update(username, {"role": role})
        self.log.info("admin_role_changed", actor=actor, target=username, role=role)
        return user

    def update_user(self, actor: str, username: str, changes: dict) -> dict:
        """``changes`` holds any of ``active``, ``password``, ``role`` (at least one)."""
        refuse_self_harm(actor, username, role=changes.get("role"), active=changes.get("active"))
        user = self.users.update(username, changes)
        described = {k: changes[k] for k in ("active", "role") if k in changes}
        self.log.info("admin_user_updated", actor=actor, target=username, fields=sorted(changes), **described)
        return user

    def delete_user(self, actor: str, username: str) -> None:
        refuse_self_harm(actor, username, delete=True)
        try:
            # Disabled first: no login, no request, every session ended; the name stays taken (nobody can
            # create it again) until its files and shares are gone, so a new account of that name inherits nothing.
            user = self.users.update(username, {"active": False})
        except ApiError as exc:
            if exc.code != "user_not_found":
                raise
            self._resume(actor, username, exc)
            return
        account = user.get("id") if isinstance(user.get("id"), str) and user.get("id") else None
        deleted, shares = self._forget(actor, username, account, "The account is disabled but its files could not be removed yet")
        self.users.delete(username)
        # Once more, for a request that passed its token check before the account was disabled and stored a file
        # since; the name is free now, so files removes nothing when auth says another account has it.
        try:
            late, late_shares = self._forget(actor, username, account, "The account was deleted but its files could not be removed yet")
        except ApiError as exc:
            if exc.code != "conflict":
                raise
            late = late_shares = 0
            log.info("admin_user_name_taken_again", actor=actor, target=username)  # a log line: nothing changed
        self.log.info("admin_user_deleted", actor=actor, target=username, files_deleted=deleted + late, shares_removed=shares + late_shares)

    def _resume(self, actor: str, username: str, not_found: ApiError) -> None:
        """The account is gone: perhaps an earlier request deleted it and then failed on its files; remove what files
        holds for the name only while no other account has it (else ``not_found`` stands)."""
        try:
            leftover, shares = self.files.delete_owned_by(username, "none")
        except ApiError as files_exc:
            if files_exc.status not in (409, 422):
                raise
            leftover = shares = 0  # another account has the name (409), or files can hold nothing for it (422)
        if not (leftover or shares):
            raise not_found
        self.log.info("admin_user_deleted", actor=actor, target=username, files_deleted=leftover, shares_removed=shares, resumed=True)

    def _forget(self, actor: str, username: str, account: str | None, what: str) -> tuple[int, int]:
        try:
            return self.files.delete_owned_by(username, account)
        except ApiError as exc:
            if exc.code == "conflict":
                raise
            self.log.error("admin_user_files_left", actor=actor, target=username, code=exc.code)
            raise ApiError(exc.code, f"{what}; repeat the request to finish.", status=exc.status, headers=exc.headers) from None

    # -- quotas ---------------------------------------------------------------
    def get_quota(self, username: str) -> dict:
        """The user's quota and usage, from files; the account must exist in auth."""
        self.users.get(username)
        return self.files.quota(username)

    def set_quota(self, actor: str, username: str, quota_bytes: int | None, max_file_bytes: int | None) -> dict:
        """Set a user's quota and largest file (None: the files service's default); the account must exist."""
        self.users.get(username)
        quota = self.files.set_quota(username, quota_bytes, max_file_bytes)
        self.log.info("admin_quota_set", actor=actor, target=username, quota_bytes=quota_bytes, max_file_bytes=max_file_bytes)
        return quota

    # -- files ----------------------------------------------------------------
    def list_files(self, limit: int | None = None, cursor: str | None = None, owner: str | None = None) -> dict:
        return self.files.list(limit, cursor, owner)

    # -- operations -------------------------------------------------------------
    def check_consistency(self, actor: str, *, deep: bool, strict: bool) -> dict:
        """The files service's consistency check (read-only), in the time a service call may take."""
        deadline.at_least(self.service_timeout)  # the check may take about that long: more than a request's budget
        report = self.files.consistency(deep=deep, strict=strict, max_seconds=consistency_budget(self.service_timeout))
        log.info(
            "admin_consistency_checked",
            actor=actor,
            deep=deep,
            ok=report.get("ok"),
            complete=report.get("complete"),
            errors=report.get("errors"),
            counts=report.get("counts"),
        )
        return report

    def delete_file(self, actor: str, file_id: str) -> None:
        self.files.delete(file_id)
        self.log.info("admin_file_deleted", actor=actor, target=file_id)
