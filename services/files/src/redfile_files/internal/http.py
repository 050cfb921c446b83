"""Internal routes of the files service (service tokens addressed to ``redfile-files`` only).

Used by the admin service: list anyone's files, delete one, delete all of a
user's and take them off every share (when the user is deleted), read and set a user's quota, count files,
bytes and uploads in progress, run the consistency check (``consistency``;
docs/operations.md).  See docs/contracts.md.
"""

from __future__ import annotations

from apiflask import APIBlueprint

from redfile_common.errors import ApiError
from redfile_common.security import service_required
from redfile_files.catalogue.service import Catalogue
from redfile_files.domain import files_domain
from redfile_files.internal.schemas import (
    ConsistencyOut,
    ConsistencyQuery,
    DeletedOut,
    InternalPageQuery,
    OwnerDeleteQuery,
    QuotaIn,
    StatsOut,
    StatsQuery,
)
from redfile_files.schemas import FilePage, QuotaOut
from redfile_files.validation import validate_username

bp = APIBlueprint("files_internal", __name__, tag="Internal")

SERVICE = "ServiceToken"


def files() -> Catalogue:
    return files_domain().catalogue


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
@bp.input(OwnerDeleteQuery, location="query")
@bp.output(DeletedOut)
@bp.doc(
    security=SERVICE,
    responses={401: "Not a service token for files", 409: "The name belongs to another account now", 422: "Not a valid username"},
)
def delete_owner_files(username, query_data):
    """A deleted user: delete every file and upload of theirs, their quota, and take them off every file shared with them."""
    name, sharing = validate_username(username), files_domain().sharing
    account = query_data["account"]
    if account is not None and not sharing.directory.holds(name, None if account == "none" else account):
        raise ApiError("conflict", "Another account has this name now: nothing was removed.")
    return {"deleted": files().delete_owner_files(name), "shares_removed": sharing.forget_recipient(name)}


@bp.get("/internal/owners/<username>/quota")
@service_required
@bp.output(QuotaOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Not a valid username"})
def get_quota(username):
    """One user's quota, largest file and usage."""
    return files().quota(validate_username(username))


@bp.put("/internal/owners/<username>/quota")
@service_required
@bp.input(QuotaIn)
@bp.output(QuotaOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Invalid input"})
def set_quota(username, json_data):
    """Set one user's quota and largest file (null: the service default); takes effect on their next reservation."""
    return files().set_quota(validate_username(username), json_data["quota_bytes"], json_data["max_file_bytes"])


@bp.get("/internal/stats")
@service_required
@bp.input(StatsQuery, location="query")
@bp.output(StatsOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Not a valid username"})
def stats(query_data):
    """Files, bytes stored and uploads in progress: everyone's, or one owner's (zeros for an owner with nothing)."""
    owner = query_data["owner"]
    return files().stats(validate_username(owner) if owner is not None else None)


# -- the consistency check (docs/operations.md) ------------------------------------------------
@bp.get("/internal/consistency")
@service_required
@bp.input(ConsistencyQuery, location="query")
@bp.output(ConsistencyOut)
@bp.doc(security=SERVICE, responses={401: "Not a service token for files", 422: "Invalid input"})
def consistency(query_data):
    """Check every files:* key read-only: records, chunks, usage, indexes, shares, orphans (see docs/operations.md)."""
    return (
        files_domain()
        .consistency_checker()
        .check(deep=query_data["deep"], strict=query_data["strict"], max_seconds=query_data["max_seconds"])
    )
