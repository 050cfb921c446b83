"""Uploads (user access tokens): sessions, the seed's chunks, and the caller's quota.

POST   /uploads                          declare name, type, total size (reserved now), optional sha256, expiry
PUT    /uploads/<id>/chunks/<index>      the chunk as the raw body; any order, in parallel, retried freely
GET    /uploads/<id>                     what is stored, what is missing, when it expires
POST   /uploads/<id>/complete            verify and publish it as a file
DELETE /uploads/<id>                     abort: every chunk is removed, the reservation returns
GET    /quota                            the caller's quota and usage
POST   /upload_chunk, /upload_complete   the seed's API: chunks in three body forms, then completion
"""

from __future__ import annotations

import functools

from apiflask import APIBlueprint
from flask import g, request

from redfile_common.security import current_principal, login_required
from redfile_files.checksums import parse_crc32c_value, parse_sha256_value
from redfile_files.domain import FilesDomain, files_domain
from redfile_files.schemas import FileOut, QuotaOut, doc_responses, expiry_ts
from redfile_files.uploads import bodies
from redfile_files.uploads.direct_input import direct
from redfile_files.uploads.schemas import ChunkOut, ChunkPutOut, CompleteIn, UploadIn, UploadOut
from redfile_files.uploads.service import prefetch_upload
from redfile_files.validation import parse_sha256

bp = APIBlueprint("uploads", __name__, tag="Uploads")

USER = "BearerAuth"
_UPLOAD_ERRORS = {401: "Missing or invalid token", 404: "No such upload (or not yours, or expired)"}


def domain() -> FilesDomain:
    return files_domain()


def user() -> str:
    return current_principal().username


@bp.post("/uploads")
@login_required
@bp.input(UploadIn)
@bp.output(UploadOut, status_code=201, description="The upload is open; its bytes are reserved")
@bp.doc(
    security=USER,
    responses={
        400: "Bad name, folder or MIME type",
        401: "Missing or invalid token",
        413: "Larger than your largest file (payload_too_large), or over your quota (quota_exceeded)",
        422: "A field is missing or out of range",
    },
)
def create_upload(json_data):
    """Start an upload session: the whole declared size is reserved against your quota now."""
    service = domain().uploads
    return service.create(
        user(),
        total_size=json_data["total_size"],
        name=json_data["name"],
        mime_type=json_data["mime_type"],
        chunk_size=json_data["chunk_size"],
        sha256=parse_sha256(json_data["sha256"]),
        compute_sha256=json_data["checksum_algorithm"] == "sha256",
        expires_ts=expiry_ts(json_data, service.clock()),
        folder=json_data["folder"],
    )


@bp.put("/uploads/<upload_id>/chunks/<int(signed=True):index>")
@login_required(reads=prefetch_upload)
@bp.output(ChunkPutOut, status_code=201, description="The chunk is stored")
@bp.doc(
    security=USER,
    responses=doc_responses(
        {
            200: {
                "description": "The same bytes were already stored: nothing changed",
                "content": {"application/json": {"schema": ChunkPutOut}},
            },
            400: "A checksum header does not match the body, or the index or size is wrong for this upload",
            409: "Different bytes are already stored at this index",
            413: "The chunk is too large",
            **_UPLOAD_ERRORS,
        }
    ),
)
def put_chunk(upload_id, index):
    """Store one chunk: the raw body, with optional X-Checksum-SHA256 / X-Checksum-CRC32C (hex or base64), verified."""
    uploads = domain().uploads
    sha = parse_sha256_value(request.headers.get("X-Checksum-SHA256"))
    crc = parse_crc32c_value(request.headers.get("X-Checksum-CRC32C"))
    # With a Content-Length, the body is read straight from the server's socket (LENGTH_CHECKED_ENDPOINTS,
    # direct_input): werkzeug's and gunicorn's layers copied every piece several times (py-spy: a third of a PUT).
    length = request.content_length
    body = direct(request.environ["wsgi.input"]) if length is not None else request.stream
    receipt = uploads.receive(user(), upload_id, index, body, length, sha256=sha, crc32c=crc, read=g.reads or None)
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
    return domain().uploads.status(user(), upload_id)


@bp.post("/uploads/<upload_id>/complete")
@login_required(reads=functools.partial(prefetch_upload, parts=True))
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
    return domain().completion.complete(user(), upload_id, read=g.reads or None)


@bp.delete("/uploads/<upload_id>")
@login_required
@bp.output({}, status_code=204, description="Aborted: every chunk is gone and the reserved bytes are back")
@bp.doc(security=USER, responses=_UPLOAD_ERRORS)
def abort_upload(upload_id):
    """Abort an upload."""
    domain().uploads.abort(user(), upload_id)
    return ""


@bp.get("/quota")
@login_required
@bp.output(QuotaOut)
@bp.doc(security=USER, responses={401: "Missing or invalid token"})
def my_quota():
    """Your storage quota, largest file and usage."""
    return domain().catalogue.quota(user())


# -- the seed's API ----------------------------------------------------------------
@bp.post("/upload_chunk")
@login_required
@bp.output(ChunkOut, description="The chunk is stored, or was already (same bytes)")
@bp.doc(
    security=USER,
    responses=doc_responses(
        {
            201: {"description": "The first chunk of a new upload is stored", "content": {"application/json": {"schema": ChunkOut}}},
            400: "Bad base64, checksum mismatch, or total_chunks differs from the upload's",
            401: "Missing or invalid token",
            404: "No such upload (or not yours)",
            409: "Different bytes are already stored at this index",
            413: "The chunk is too large, or over your quota (quota_exceeded)",
            415: "Unsupported content type",
            422: "A field is missing or out of range",
        }
    ),
)
def upload_chunk():
    """Store one chunk of an upload; without file_id, start a new upload."""
    uploads = domain().uploads
    settings = uploads.settings
    chunk = bodies.read_chunk_request(request, max_chunk_bytes=settings.max_chunk_bytes, max_chunks=settings.max_chunks)
    receipt = uploads.receive_seed_chunk(
        user(), file_id=chunk.file_id, index=chunk.chunk_index, total_chunks=chunk.total_chunks, data=chunk.data, sha256=chunk.sha256
    )
    return receipt, 201 if receipt.created else 200


@bp.post("/upload_complete")
@login_required
@bp.input(CompleteIn)
@bp.output(FileOut, status_code=201, description="The upload is now a file")
@bp.doc(
    security=USER,
    responses={
        400: "Bad name, folder or MIME type",
        401: "Missing or invalid token",
        404: "No such upload (or not yours)",
        409: "Chunks are missing (details.missing lists them)",
        422: "The stored bytes do not add up to total_size",
    },
)
def upload_complete(json_data):
    """Finish a chunked upload: check it is whole, hash it and publish it as a file."""
    return domain().completion.complete(
        user(),
        json_data["file_id"],
        name=json_data["name"],
        mime_type=json_data["mime_type"],
        total_size=json_data["total_size"],
        expires_ts=expiry_ts(json_data, domain().uploads.clock()),
        folder=json_data["folder"],
    )
