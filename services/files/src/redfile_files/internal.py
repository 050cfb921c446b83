"""Internal routes of the files service (service tokens addressed to ``redfile-files`` only).

Used by the admin service: list anyone's files, delete one, delete all of a
user's (when the user is deleted).  See docs/contracts.md.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app

from redfile_common.security import service_required

from .domain import FilesService
from .schemas import DeletedOut, FilePage, InternalPageQuery

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
