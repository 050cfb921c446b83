"""The admin HTTP API: every route needs an admin's access token.

Each handler authenticates, validates, calls one ``AdminActions`` (or, for the
read-only operations views, ``AdminReports``) method and
lets its schema shape the answer.  Authentication runs before validation, so
a caller who is not an admin learns nothing about the expected input.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from apiflask.schemas import EmptySchema

from redfile_admin.domain import AdminDomain
from redfile_admin.reports import AdminReports
from redfile_admin.schemas import (
    AuditPage,
    AuditQuery,
    ConsistencyOut,
    ConsistencyQuery,
    FileListQuery,
    FilePage,
    PageQuery,
    QuotaIn,
    QuotaOut,
    RoleChangeIn,
    StatsOut,
    UsageOut,
    UserCreateIn,
    UserOut,
    UserPage,
    UserPatchIn,
)
from redfile_admin.service import AdminActions
from redfile_common.app import domain_of
from redfile_common.security import current_principal, login_required

bp = APIBlueprint("admin", __name__, url_prefix="/admin", tag="Admin")

_ERRORS = {401: "No valid access token", 403: "Not an admin", 502: "auth or files failed", 503: "auth or files unavailable"}
_EXTRA = {
    400: "Malformed JSON, or a cursor that is not one",
    404: "No such user or file",
    409: "Conflict (exists, or an admin acting on their own account)",
    422: "Invalid input",
}


def _doc(*extra: int) -> dict:
    responses = {**_ERRORS, **{code: _EXTRA[code] for code in extra}}
    return {"security": "BearerAuth", "responses": dict(sorted(responses.items()))}


def actions() -> AdminActions:
    return domain_of(AdminDomain).actions


def reports() -> AdminReports:
    return domain_of(AdminDomain).reports


def actor() -> str:
    return current_principal().username


@bp.post("/users")
@bp.doc(**_doc(400, 409, 422))
@login_required(admin=True)
@bp.input(UserCreateIn, arg_name="body")
@bp.output(UserOut, status_code=201)
def create_user(body):
    """Create a user account."""
    return actions().create_user(actor(), body["username"], body["password"], body["role"]), 201


@bp.get("/users")
@bp.doc(**_doc(400, 422))
@login_required(admin=True)
@bp.input(PageQuery, location="query", arg_name="query")
@bp.output(UserPage)
def list_users(query):
    """List all users by username, a page at a time."""
    return actions().list_users(query.get("limit"), query.get("cursor"))


@bp.get("/users/<username>")
@bp.doc(**_doc(404))
@login_required(admin=True)
@bp.output(UserOut)
def get_user(username):
    """Show one user."""
    return actions().get_user(username)


@bp.patch("/users/<username>")
@bp.doc(**_doc(400, 404, 409, 422))
@login_required(admin=True)
@bp.input(UserPatchIn, arg_name="body")
@bp.output(UserOut)
def update_user(username, body):
    """Enable or disable a user, reset their password or change their role; their sessions end."""
    return actions().update_user(actor(), username, body)


@bp.delete("/users/<username>")
@bp.doc(**_doc(404, 409))
@login_required(admin=True)
@bp.output(EmptySchema, status_code=204)
def delete_user(username):
    """Delete a user: their files, uploads and quota, and every share with them; a new account of the name inherits nothing."""
    actions().delete_user(actor(), username)
    return "", 204


@bp.get("/users/<username>/quota")
@bp.doc(**_doc(404))
@login_required(admin=True)
@bp.output(QuotaOut)
def get_quota(username):
    """Show a user's storage quota, largest file and usage."""
    return actions().get_quota(username)


@bp.put("/users/<username>/quota")
@bp.doc(**_doc(400, 404, 422))
@login_required(admin=True)
@bp.input(QuotaIn, arg_name="body")
@bp.output(QuotaOut)
def set_quota(username, body):
    """Set a user's storage quota and largest file (null: the default); enforced from their next upload."""
    return actions().set_quota(actor(), username, body["quota_bytes"], body["max_file_bytes"])


@bp.post("/roles")
@bp.doc(**_doc(400, 404, 409, 422))
@login_required(admin=True)
@bp.input(RoleChangeIn, arg_name="body")
@bp.output(UserOut)
def change_role(body):
    """Give a user the admin or the user role; their sessions end."""
    return actions().change_role(actor(), body["username"], body["role"])


@bp.get("/files")
@bp.doc(**_doc(422))
@login_required(admin=True)
@bp.input(FileListQuery, location="query", arg_name="query")
@bp.output(FilePage)
def list_files(query):
    """List every user's files, newest first, optionally of one owner."""
    return actions().list_files(query.get("limit"), query.get("cursor"), query.get("owner"))


@bp.delete("/files/<file_id>")
@bp.doc(**_doc(404))
@login_required(admin=True)
@bp.output(EmptySchema, status_code=204)
def delete_file(file_id):
    """Delete any user's file."""
    actions().delete_file(actor(), file_id)
    return "", 204


# -- operations views ------------------------------------------------------------
@bp.get("/stats")
@bp.doc(**_doc())
@login_required(admin=True)
@bp.output(StatsOut)
def stats():
    """Accounts, files, bytes stored, uploads in progress, and Redis memory and persistence."""
    return reports().stats()


@bp.get("/users/<username>/usage")
@bp.doc(**_doc(404))
@login_required(admin=True)
@bp.output(UsageOut)
def user_usage(username):
    """One user's files, bytes stored, uploads in progress and quota."""
    return reports().usage(username)


@bp.get("/consistency")
@bp.doc(**_doc(422))
@login_required(admin=True)
@bp.input(ConsistencyQuery, location="query", arg_name="query")
@bp.output(ConsistencyOut)
def consistency(query):
    """Check the files service's data read-only: usage against stored sizes, chunks, indexes, shares, orphan keys."""
    return actions().check_consistency(actor(), deep=query["deep"], strict=query["strict"])


@bp.get("/audit")
@bp.doc(**_doc(400, 422))
@login_required(admin=True)
@bp.input(AuditQuery, location="query", arg_name="query")
@bp.output(AuditPage)
def audit_trail(query):
    """The audit trail, newest first: filter by user, action (or family) and time; a page at a time."""
    return reports().audit(
        limit=query.get("limit") or 50,
        cursor=query.get("cursor"),
        user=query.get("user"),
        action=query.get("action"),
        since=query.get("since"),
        until=query.get("until"),
    )
