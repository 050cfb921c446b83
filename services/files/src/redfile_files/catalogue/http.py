"""Public routes of the files service (user access tokens): uploads, files and texts.

Each handler authenticates, validates, calls one domain function and
serialises; the rules live in ``domain.py``, the bytes on the wire in
``bodies.py`` and ``downloads.py``.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import current_app, g, request

from redfile_common.security import current_principal, login_required
from redfile_files.catalogue.downloads import byte_range, download_response, not_modified, unsatisfiable
from redfile_files.catalogue.service import FilesService
from redfile_files.schemas import ChunkOut, CompleteIn, FileJsonIn, FileOut, FilePage, PageQuery, RenameIn, TextIn, TextOut, expiry_ts
from redfile_files.uploads import bodies
from redfile_files.validation import is_file_id

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


def files() -> FilesService:
    return current_app.extensions["redfile_files"]


def _settings():
    return files().settings


@bp.post("/upload_chunk")
@login_required
@bp.output(ChunkOut, description="The chunk is stored, or was already (same bytes)")
@bp.doc(
    security=USER,
    responses={
        201: {"description": "The first chunk of a new upload is stored", "content": {"application/json": {"schema": ChunkOut}}},
        400: "Bad base64, checksum mismatch, or total_chunks differs from the upload's",
        401: "Missing or invalid token",
        404: "No such upload (or not yours)",
        409: "Different bytes are already stored at this index",
        413: "The chunk is too large, or over your quota (quota_exceeded)",
        415: "Unsupported content type",
        422: "A field is missing or out of range",
    },
)
def upload_chunk():
    """Store one chunk of an upload; without file_id, start a new upload."""
    settings = _settings()
    chunk = bodies.read_chunk_request(request, max_chunk_bytes=settings.max_chunk_bytes, max_chunks=settings.max_chunks)
    receipt = files().receive_chunk(
        current_principal().username,
        file_id=chunk.file_id,
        chunk_index=chunk.chunk_index,
        total_chunks=chunk.total_chunks,
        data=chunk.data,
        sha256=chunk.sha256,
    )
    return receipt, 201 if receipt.created else 200


@bp.post("/upload_complete")
@login_required
@bp.input(CompleteIn)
@bp.output(FileOut, status_code=201, description="The upload is now a file")
@bp.doc(
    security=USER,
    responses={
        400: "Bad name or MIME type",
        401: "Missing or invalid token",
        404: "No such upload (or not yours)",
        409: "Chunks are missing (details.missing lists them)",
        422: "The stored bytes do not add up to total_size",
    },
)
def upload_complete(json_data):
    """Finish a chunked upload: check it is whole, hash it and publish it as a file."""
    service = files()
    return service.complete_upload(
        current_principal().username,
        file_id=json_data["file_id"],
        name=json_data["name"],
        mime_type=json_data["mime_type"],
        total_size=json_data["total_size"],
        expires_ts=expiry_ts(json_data, service.clock()),
    )


@bp.get("/files")
@login_required
@bp.input(PageQuery, location="query")
@bp.output(FilePage)
@bp.doc(security=USER, responses={401: "Missing or invalid token"})
def list_files(query_data):
    """List the caller's files, newest first, a page at a time."""
    items, cursor = files().list_files(current_principal().username, limit=query_data["limit"], cursor=query_data["cursor"])
    return {"items": items, "next_cursor": cursor}


@bp.post("/files")
@login_required
@bp.output(FileOut, status_code=201, description="The file is stored")
@bp.doc(
    security=USER,
    responses={400: "Bad name, MIME type or base64", 401: "Missing or invalid token", 413: "Too large", 422: "A field is missing"},
)
def create_file():
    """Upload a small file in one request (multipart part `file`, or JSON with base64 `data`)."""
    settings = _settings()
    upload = bodies.read_file_upload(request, FileJsonIn(), max_bytes=settings.max_single_upload_bytes)
    return files().create_file(current_principal().username, upload.data, name=upload.name, mime_type=upload.mime_type)


@bp.get("/files/<file_id>")
@login_required
@bp.doc(
    security=USER,
    responses={
        200: {
            "description": "The file's bytes, as its own MIME type (HEAD: only the headers)",
            "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}},
        },
        206: {"description": "One byte range (Range: bytes=a-b)", "content": {"*/*": {"schema": {"type": "string", "format": "binary"}}}},
        304: "Not modified (If-None-Match matched the ETag)",
        416: "The range starts past the end (Content-Range: bytes */size)",
        500: "A stored chunk failed its integrity check (stored_data_corrupt)",
        **_FILE_ERRORS,
    },
)
def download_file(file_id):
    """Download a file, streamed chunk by chunk and verified; HEAD, one Range, ETag, If-None-Match and If-Range."""
    service = files()
    record = service.get_file(current_principal(), file_id)
    if request.if_none_match.contains_weak(record.etag):
        return not_modified(record)
    span = byte_range(request, record)
    if span is False:
        raise unsatisfiable(record)
    start, end = span if span is not None else (0, record.size)
    if request.method == "HEAD":
        return download_response(record, None, span)
    return download_response(record, service.read_chunks(record, start, end), span)


def _read_meta(pipe, file_id: str) -> None:
    """The metadata read, in the token check's round trip (an id that is not one reads nothing)."""
    if is_file_id(file_id):
        files().store.queue_meta(pipe, file_id)


@bp.get("/files/<file_id>/meta")
@login_required(reads=_read_meta)
@bp.output(FileOut)
@bp.doc(security=USER, responses=_FILE_ERRORS)
def file_meta(file_id):
    """A file's metadata."""
    return files().get_file(current_principal(), file_id, raw_meta=g.reads[0] if g.reads else None)


@bp.post("/files/<file_id>/rename")
@login_required
@bp.input(RenameIn)
@bp.output(FileOut)
@bp.doc(security=USER, responses={400: "Bad name", **_FILE_ERRORS})
def rename_file(file_id, json_data):
    """Rename a file."""
    return files().rename(current_principal(), file_id, json_data["new_name"])


@bp.delete("/files/<file_id>")
@login_required
@bp.output({}, status_code=204, description="Deleted")
@bp.doc(security=USER, responses=_FILE_ERRORS)
def delete_file(file_id):
    """Delete a file and all its chunks."""
    files().delete(current_principal(), file_id)
    return ""


@bp.post("/texts")
@login_required
@bp.input(TextIn)
@bp.output(FileOut, status_code=201, description="The text is stored as a file of kind text")
@bp.doc(security=USER, responses={400: "Bad name", 401: "Missing or invalid token", 413: "Too large"})
def create_text(json_data):
    """Save a text snippet (a text/plain file; default name snippet-<yyyymmdd-hhmmss>.txt)."""
    return files().create_text(current_principal().username, json_data["content"], json_data["name"])


@bp.get("/texts/<file_id>")
@login_required
@bp.output(TextOut)
@bp.doc(security=USER, responses={**_FILE_ERRORS, 404: "No such text (or not yours)"})
def read_text(file_id):
    """A text snippet with its content."""
    record, content = files().read_text(current_principal(), file_id)
    return TextView(record, content)
