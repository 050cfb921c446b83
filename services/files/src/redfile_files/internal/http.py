"""Internal routes of the files service (service tokens addressed to ``redfile-files`` only).

Used by the admin service: list anyone's files, delete one, delete all of a
user's (when the user is deleted), read and set a user's quota, count files,
bytes and uploads in progress, run the consistency check (``consistency``;
docs/operations.md).  See docs/contracts.md.
"""

from __future__ import annotations

from apiflask import APIBlueprint, Schema
from apiflask.fields import Boolean, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Range
from flask import current_app

from redfile_common.errors import ApiError
from redfile_common.security import service_required
from redfile_files.catalogue.service import FilesService
from redfile_files.maintenance.consistency import ConsistencyChecker
from redfile_files.schemas import DeletedOut, FilePage, InternalPageQuery, QuotaIn, QuotaOut, StatsOut, StatsQuery

bp = APIBlueprint("files_internal", __name__, tag="Internal")

SERVICE = "ServiceToken"


def files() -> FilesService:
    return current_app.extensions["redfile_files"]


@bp.get("/internal/files")
@service_required
@bp.input(InternalPageQuery, location="query")
@bp.output(FilePage)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files"})
def list_files(query_data):
    """List one owner's files (or every file without owner), newest first."""
    items, cursor = files().list_files(query_data["owner"], limit=query_data["limit"], cursor=query_data["cursor"])
    return {"items": items, "next_cursor": cursor}


@bp.delete("/internal/files/<file_id>")
@service_required
@bp.output({}, status_code=204, description="Deleted")
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 404: "No such file"})
def delete_file(file_id):
    """Delete any file."""
    files().delete(None, file_id)
    return ""


@bp.delete("/internal/owners/<username>/files")
@service_required
@bp.output(DeletedOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Not a valid username"})
def delete_owner_files(username):
    """Delete every file of one user."""
    return {"deleted": files().delete_owner_files(_username(username))}


def _username(username: str) -> str:
    # U+FFFD: the path held bytes that are not UTF-8 (%ff), which no username does
    if not 1 <= len(username) <= 128 or any(ord(ch) < 0x20 or ch in "{}\ufffd" for ch in username):
        raise ApiError("validation_error", "Not a valid username.", details={"path": {"username": ["Not a valid username."]}})
    return username


@bp.get("/internal/owners/<username>/quota")
@service_required
@bp.output(QuotaOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Not a valid username"})
def get_quota(username):
    """One user's quota, largest file and usage."""
    return files().quota(_username(username))


@bp.put("/internal/owners/<username>/quota")
@service_required
@bp.input(QuotaIn)
@bp.output(QuotaOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Invalid input"})
def set_quota(username, json_data):
    """Set one user's quota and largest file (null: the service default); takes effect on their next reservation."""
    return files().set_quota(_username(username), json_data["quota_bytes"], json_data["max_file_bytes"])


@bp.get("/internal/stats")
@service_required
@bp.input(StatsQuery, location="query")
@bp.output(StatsOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Not a valid username"})
def stats(query_data):
    """Files, bytes stored and uploads in progress: everyone's, or one owner's (zeros for an owner with nothing)."""
    owner = query_data["owner"]
    return files().stats(_username(owner) if owner is not None else None)


# -- the consistency check (docs/operations.md) ------------------------------------------------
class ConsistencyQuery(Schema):
    deep = Boolean(
        load_default=False,
        metadata={
            "description": "also read every file's bytes and check them against its CRC32C and composite (and SHA-256, when it has one)"
        },
    )
    strict = Boolean(load_default=False, metadata={"description": "stale links/inbox entries fail the check too"})
    max_seconds = Float(
        load_default=50.0,
        validate=Range(min=1, max=55),
        metadata={"description": "stop the walk after this long (the report is then incomplete)"},
    )


class ConsistencyProblemOut(Schema):
    kind = String()
    severity = String(metadata={"enum": ["error", "stale"]})
    key = String()
    detail = String()
    id = String(allow_none=True)
    user = String(allow_none=True)


class ConsistencyPendingOut(Schema):
    id = String()
    user = String(allow_none=True)
    reason = String(metadata={"enum": ["due", "leased", "active"]})
    issues = List(String())


class ConsistencyUserOut(Schema):
    user = String()
    used = Integer(metadata={"description": "quota.used"})
    charged = Integer(metadata={"description": "the sum of the user's charges (held c:)"})
    files = Integer()
    files_bytes = Integer(metadata={"description": "the sum of the sizes of the user's files"})
    reserved = Integer(metadata={"description": "quota.reserved"})
    reservations = Integer(metadata={"description": "the sum of the user's reservations (held r:)"})
    uploads = Integer()
    uploads_min_bytes = Integer(metadata={"description": "what the user's uploads must at least hold reserved"})
    ok = Boolean()


class ConsistencyOut(Schema):
    ok = Boolean(metadata={"description": "complete, and no error (with strict: no stale entry either)"})
    complete = Boolean(metadata={"description": "false: the walk ran out of time"})
    deep = Boolean()
    strict = Boolean()
    started_at = String()
    seconds = Float()
    summary = Dict(keys=String(), values=Integer())
    errors = Integer()
    stale = Integer()
    counts = Dict(keys=String(), values=Integer(), metadata={"description": "problems by kind"})
    problems = List(Nested(ConsistencyProblemOut))
    problems_truncated = Boolean()
    pending = List(Nested(ConsistencyPendingOut), metadata={"description": "ids the reconciler owns right now"})
    users = List(Nested(ConsistencyUserOut))
    users_truncated = Boolean()


@bp.get("/internal/consistency")
@service_required
@bp.input(ConsistencyQuery, location="query")
@bp.output(ConsistencyOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Invalid input"})
def consistency(query_data):
    """Check every files:* key read-only: records, chunks, usage, indexes, shares, orphans (see docs/operations.md)."""
    checker = ConsistencyChecker(files(), current_app.extensions["redfile_files_sharing"].store)
    return checker.check(deep=query_data["deep"], strict=query_data["strict"], max_seconds=query_data["max_seconds"])
