"""Internal routes of the files service (service tokens addressed to ``redfile-files`` only).

Used by the admin service: list anyone's files, delete one, delete all of a
user's (when the user is deleted), read and set a user's quota, count files,
bytes and uploads in progress.  See docs/contracts.md.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app

from redfile_common.errors import ApiError
from redfile_common.security import service_required

from .domain import FilesService
from .schemas import DeletedOut, FilePage, InternalPageQuery, QuotaIn, QuotaOut, StatsOut, StatsQuery

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
@bp.doc(security=SERVICE, responses={401: "Not a service token for files"})
def delete_owner_files(username):
    """Delete every file of one user."""
    return {"deleted": files().delete_owner_files(username)}


def _username(username: str) -> str:
    if not 1 <= len(username) <= 128 or any(ord(ch) < 0x20 or ch in "{}" for ch in username):
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
