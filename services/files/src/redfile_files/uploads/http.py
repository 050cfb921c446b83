"""Upload sessions (user access tokens): create, send chunks, ask, complete or abort; and the caller's quota.

POST   /uploads                          declare name, type, total size (reserved now), optional sha256, expiry
PUT    /uploads/<id>/chunks/<index>      the chunk as the raw body; any order, in parallel, retried freely
GET    /uploads/<id>                     what is stored, what is missing, when it expires
POST   /uploads/<id>/complete            verify and publish it as a file
DELETE /uploads/<id>                     abort: every chunk is removed, the reservation returns
GET    /quota                            the caller's quota and usage
"""

from __future__ import annotations

import functools

from apiflask import APIBlueprint
from flask import current_app, g, request

from redfile_common.security import current_principal, login_required
from redfile_files.catalogue.service import FilesService
from redfile_files.checksums import parse_crc32c_value, parse_sha256_value
from redfile_files.schemas import ChunkPutOut, FileOut, QuotaOut, UploadIn, UploadOut, expiry_ts
from redfile_files.uploads.direct_input import direct
from redfile_files.validation import is_file_id, parse_sha256

bp = APIBlueprint("uploads", __name__, tag="Uploads")

USER = "BearerAuth"
_UPLOAD_ERRORS = {401: "Missing or invalid token", 404: "No such upload (or not yours, or expired)"}


def files() -> FilesService:
    return current_app.extensions["redfile_files"]


def user() -> str:
    return current_principal().username


@bp.post("/uploads")
@login_required
@bp.input(UploadIn)
@bp.output(UploadOut, status_code=201, description="The upload is open; its bytes are reserved")
@bp.doc(
    security=USER,
    responses={
        400: "Bad name or MIME type",
        401: "Missing or invalid token",
        413: "Larger than your largest file (payload_too_large), or over your quota (quota_exceeded)",
        422: "A field is missing or out of range",
    },
)
def create_upload(json_data):
    """Start an upload session: the whole declared size is reserved against your quota now."""
    service = files()
    return service.uploads.create(
        user(),
        total_size=json_data["total_size"],
        name=json_data["name"],
        mime_type=json_data["mime_type"],
        chunk_size=json_data["chunk_size"],
        sha256=parse_sha256(json_data["sha256"]),
        compute_sha256=json_data["checksum_algorithm"] == "sha256",
        expires_ts=expiry_ts(json_data, service.clock()),
    )


def _read_upload(pipe, upload_id: str, *, parts: bool = False, **_) -> None:
    """The upload's first read (with ``parts``, its part table too), in the token check's round trip
    (an id that is not one reads nothing)."""
    if is_file_id(upload_id):
        files().store.queue_upload(pipe, upload_id, parts=parts)


@bp.put("/uploads/<upload_id>/chunks/<int(signed=True):index>")
@login_required(reads=_read_upload)
@bp.output(ChunkPutOut, status_code=201, description="The chunk is stored")
@bp.doc(
    security=USER,
    responses={
        200: {
            "description": "The same bytes were already stored: nothing changed",
            "content": {"application/json": {"schema": ChunkPutOut}},
        },
        400: "A checksum header does not match the body, or the index or size is wrong for this upload",
        409: "Different bytes are already stored at this index",
        413: "The chunk is too large",
        **_UPLOAD_ERRORS,
    },
)
def put_chunk(upload_id, index):
    """Store one chunk: the raw body, with optional X-Checksum-SHA256 / X-Checksum-CRC32C (hex or base64), verified."""
    service = files()
    sha = parse_sha256_value(request.headers.get("X-Checksum-SHA256"))
    crc = parse_crc32c_value(request.headers.get("X-Checksum-CRC32C"))
    # With a Content-Length, the body is read straight from the server's socket (LENGTH_CHECKED_ENDPOINTS,
    # direct_input): werkzeug's and gunicorn's layers copied every piece several times (py-spy: a third of a PUT).
    length = request.content_length
    body = direct(request.environ["wsgi.input"]) if length is not None else request.stream
    receipt = service.uploads.receive(user(), upload_id, index, body, length, sha256=sha, crc32c=crc, read=g.reads or None)
    body = {
        "upload_id": upload_id,
        "chunk_index": index,
        "size": receipt.size,
        "sha256": receipt.sha256 or None,
        "crc32c": receipt.crc32c,
        "blake3": receipt.blake3,
        "stored": receipt.stored,
        "received_chunks": receipt.received_chunks,
        "received_bytes": receipt.received_bytes,
    }
    return body, 201 if receipt.stored else 200


@bp.get("/uploads/<upload_id>")
@login_required
@bp.output(UploadOut)
@bp.doc(security=USER, responses=_UPLOAD_ERRORS)
def upload_status(upload_id):
    """An upload's progress: stored chunks and bytes, the missing indices, when it expires."""
    return files().upload_status(user(), upload_id)


@bp.post("/uploads/<upload_id>/complete")
@login_required(reads=functools.partial(_read_upload, parts=True))
@bp.output(FileOut, status_code=201, description="The upload is now a file")
@bp.doc(
    security=USER,
    responses={
        400: "The whole file's SHA-256 is not the declared one (checksum_mismatch)",
        409: "Chunks are missing (details.missing lists them)",
        **_UPLOAD_ERRORS,
    },
)
def complete_upload(upload_id):
    """Finish an upload session: verify every chunk, compute the file's checksums and publish it."""
    return files().uploads.complete(user(), upload_id, read=g.reads or None)


@bp.delete("/uploads/<upload_id>")
@login_required
@bp.output({}, status_code=204, description="Aborted: every chunk is gone and the reserved bytes are back")
@bp.doc(security=USER, responses=_UPLOAD_ERRORS)
def abort_upload(upload_id):
    """Abort an upload."""
    files().uploads.abort(user(), upload_id)
    return ""


@bp.get("/quota")
@login_required
@bp.output(QuotaOut)
@bp.doc(security=USER, responses={401: "Missing or invalid token"})
def my_quota():
    """Your storage quota, largest file and usage."""
    return files().quota(user())
