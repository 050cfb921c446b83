"""Files and texts (user access tokens): list, one-request upload, download, metadata, rename, delete, texts.

Each handler authenticates, validates, calls one domain function and serialises; the rules live in
``service.py``, the bytes on the wire in ``downloads.py``.
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime

from apiflask import APIBlueprint
from flask import g, request

from redfile_common.security import current_principal, login_required
from redfile_files.catalogue.downloads import serve
from redfile_files.catalogue.schemas import FilePatchIn, RenameIn, TextIn, TextOut
from redfile_files.catalogue.search import FileQuery
from redfile_files.catalogue.service import Catalogue, prefetch_meta
from redfile_files.domain import files_domain
from redfile_files.schemas import FileListQuery, FileOut, FilePage, doc_responses
from redfile_files.uploads import bodies
from redfile_files.uploads.schemas import FileJsonIn

bp = APIBlueprint("files", __name__, tag="Files")

USER = "BearerAuth"
_FILE_ERRORS = {401: "Missing or invalid token", 404: "No such file (or not yours)"}


class TextView:
    """A text file and its content, for TextOut."""

    def __init__(self, record, content: str) -> None:
        self._record = record
        self.content = content

    def __getattr__(self, name):
        return getattr(self._record, name)


def catalogue() -> Catalogue:
    return files_domain().catalogue


@bp.get("/files")
@login_required
@bp.input(FileListQuery, location="query")
@bp.output(FilePage)
@bp.doc(
    security=USER,
    responses={
        400: "Bad folder (invalid_folder), or a combination no index serves (unsupported_query)",
        401: "Missing or invalid token",
        422: "A bad value or cursor",
    },
)
def list_files(query_data):
    """List the caller's files a page at a time: newest first, or filtered by folder, name, size or time and sorted.

    A page may hold fewer than `limit` files and still have a `next_cursor` (a name search reads a bounded
    number of names per request)."""
    query = FileQuery(
        folder=query_data["folder"],
        recursive=query_data["recursive"],
        q=query_data["q"],
        sort=query_data["sort"],
        order=query_data["order"],
        min_size=query_data["min_size"],
        max_size=query_data["max_size"],
        created_after_ms=_ms(query_data["created_after"]),
        created_before_ms=_ms(query_data["created_before"]),
        type=query_data["type"],
    )
    items, cursor = catalogue().list_files(
        current_principal().username, limit=query_data["limit"], cursor=query_data["cursor"], query=query
    )
    return {"items": items, "next_cursor": cursor}


def _ms(at: datetime | None) -> int | None:
    if at is None:
        return None
    return max(0, int((at if at.tzinfo else at.replace(tzinfo=UTC)).timestamp() * 1000))


@bp.post("/files")
@login_required
@bp.output(FileOut, status_code=201, description="The file is stored")
@bp.doc(
    security=USER,
    responses={400: "Bad name, MIME type or base64", 401: "Missing or invalid token", 413: "Too large", 422: "A field is missing"},
)
def create_file():
    """Upload a small file in one request (multipart part `file`, or JSON with base64 `data`)."""
    service = catalogue()
    upload = bodies.read_file_upload(request, FileJsonIn(), max_bytes=service.settings.max_single_upload_bytes)
    return service.create_file(
        current_principal().username, upload.data, name=upload.name, mime_type=upload.mime_type, folder=upload.folder
    )


@bp.get("/files/<file:file_id>")
@login_required
@bp.doc(
    security=USER,
    responses=doc_responses(
        {
            200: {
                "description": "The file's bytes, as its own MIME type (HEAD: only the headers)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            206: {
                "description": "One byte range (Range: bytes=a-b)",
                "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
            },
            304: {"description": "Not modified (If-None-Match matched the ETag)"},  # no body: no content
            416: "The range starts past the end (Content-Range: bytes */size)",
            500: "A stored chunk failed its integrity check (stored_data_corrupt)",
            503: "A Redis Cluster primary that holds some of the file's chunks is down (storage_unavailable, Retry-After)",
            **_FILE_ERRORS,
        }
    ),
)
def download_file(file_id):
    """Download a file, streamed chunk by chunk and verified; HEAD, one Range, ETag, If-None-Match and If-Range."""
    domain = files_domain()
    record = domain.catalogue.get_file(current_principal(), file_id)
    return serve(request, record, functools.partial(domain.reader.read_chunks, record))


@bp.get("/files/<file_id>/meta")
@login_required(reads=prefetch_meta)
@bp.output(FileOut)
@bp.doc(security=USER, responses=_FILE_ERRORS)
def file_meta(file_id):
    """A file's metadata."""
    return catalogue().get_file(current_principal(), file_id, read=g.reads or None)


@bp.patch("/files/<file:file_id>")
@login_required
@bp.input(FilePatchIn)
@bp.output(FileOut)
@bp.doc(
    security=USER,
    responses={400: "Bad name (invalid_name) or folder (invalid_folder)", 409: "Renamed meanwhile, again and again", **_FILE_ERRORS},
)
def patch_file(file_id, json_data):
    """Rename and/or move a file: any of name and folder."""
    return catalogue().update(current_principal(), file_id, name=json_data.get("name"), folder=json_data.get("folder"))


@bp.post("/files/<file_id>/rename")
@login_required
@bp.input(RenameIn)
@bp.output(FileOut)
@bp.doc(security=USER, responses={400: "Bad name", **_FILE_ERRORS})
def rename_file(file_id, json_data):
    """Rename a file."""
    return catalogue().rename(current_principal(), file_id, json_data["new_name"])


@bp.delete("/files/<file:file_id>")
@login_required
@bp.output({}, status_code=204, description="Deleted")
@bp.doc(security=USER, responses=_FILE_ERRORS)
def delete_file(file_id):
    """Delete a file and all its chunks."""
    catalogue().delete(current_principal(), file_id)
    return ""


@bp.post("/texts")
@login_required
@bp.input(TextIn)
@bp.output(FileOut, status_code=201, description="The text is stored as a file of kind text")
@bp.doc(security=USER, responses={400: "Bad name", 401: "Missing or invalid token", 413: "Too large"})
def create_text(json_data):
    """Save a text snippet (a text/plain file; default name snippet-<yyyymmdd-hhmmss>.txt)."""
    return catalogue().create_text(current_principal().username, json_data["content"], json_data["name"], json_data["folder"])


@bp.get("/texts/<file_id>")
@login_required
@bp.output(TextOut)
@bp.doc(security=USER, responses={**_FILE_ERRORS, 404: "No such text (or not yours)"})
def read_text(file_id):
    """A text snippet with its content."""
    record, content = catalogue().read_text(current_principal(), file_id)
    return TextView(record, content)
