"""The tus 1.0.0 resumable-upload protocol at ``/tus/`` (creation URL) and ``/tus/<id>`` (uploads).

Core (``OPTIONS``, ``HEAD``, ``PATCH``) and every extension: creation,
creation-with-upload, creation-defer-length, expiration, checksum,
checksum-trailer, termination, concatenation, concatenation-unfinished.
``GET /tus/<id>`` downloads the finished file (as ``GET /files/<id>``).

This module speaks HTTP only: headers in, headers out.  The rules live in
``tus.engine`` (on the same upload lifecycle as sessions: a finished upload is
an ordinary file), the header grammar in ``tus.protocol``.

* Every request but ``OPTIONS`` (and ``GET``, which browsers send bare) must
  carry ``Tus-Resumable: 1.0.0`` (else 412 with ``Tus-Version``), and every
  response carries it.  ``X-HTTP-Method-Override`` replaces the method.
* Every request but ``OPTIONS`` needs the user's access token, and only the
  owner may touch an upload: another user's is a 404, like a missing one.
* CORS, for browsers (tus-js-client, Uppy): origins in ``TUS_CORS_ORIGINS``
  (``*`` for any) get ``Access-Control-Allow-Origin``, the tus headers exposed,
  and preflight answers.  Tokens travel in ``Authorization``, never cookies,
  so no credentials mode is needed.
* A body is read from the stream in 64 KiB pieces (never whole); one that ends
  short (a cut connection) keeps what arrived, unless a checksum covers it.
  A trailer ``Upload-Checksum`` is read from gunicorn's request once the
  chunked body is over (``Trailer: Upload-Checksum`` must announce it).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator

from flask import Blueprint, Response, request
from werkzeug.http import http_date
from werkzeug.wsgi import get_input_stream

from redfile_common.errors import ApiError
from redfile_common.security import authenticate_user
from redfile_files.catalogue.downloads import serve
from redfile_files.domain import files_domain
from redfile_files.tus.engine import TusUploads
from redfile_files.tus.model import BodyInterrupted, TusUpload
from redfile_files.tus.protocol import (
    ALGORITHMS,
    EXTENSIONS,
    OFFSET_CONTENT_TYPE,
    TUS_VERSION,
    BodyChecksum,
    parse_checksum,
    parse_concat,
    parse_metadata,
    parse_uint,
)
from redfile_files.uploads.direct_input import direct

bp = Blueprint("tus", __name__)

# gunicorn's body readers return only once a whole piece (or the end) has arrived: small pieces
# keep what a process has received close to what it has put in place, should it die.
PIECE = 64 * 1024
# A body with a Content-Length is read straight from gunicorn's socket (direct_input), where a read hands over
# what has arrived, up to this much, waiting only when nothing has: large reads cost no such delay, and 1 MiB
# pieces move a one-request upload about half as fast again as 64 KiB ones (docs/performance.md).
DIRECT_PIECE = 1024 * 1024
METHODS = ["OPTIONS", "HEAD", "GET", "POST", "PATCH", "DELETE"]
TUS_HEADERS = (
    "Upload-Offset",
    "Upload-Length",
    "Upload-Defer-Length",
    "Upload-Metadata",
    "Upload-Concat",
    "Upload-Expires",
    "Upload-Checksum",
    "Tus-Resumable",
    "Tus-Version",
    "Tus-Extension",
    "Tus-Max-Size",
    "Tus-Checksum-Algorithm",
)
CORS_ALLOW_HEADERS = ", ".join(
    ("Authorization", "Content-Type", "X-HTTP-Method-Override", "X-Request-ID", "X-Requested-With", *TUS_HEADERS)
)
CORS_EXPOSE_HEADERS = ", ".join(("Location", *TUS_HEADERS))


def engine() -> TusUploads:
    return files_domain().tus


# PUT too, so that it gets the tus 405 (with Tus-Resumable and Allow) rather than the router's.
@bp.route("/tus/", methods=[*METHODS, "PUT"], strict_slashes=False)
def creation_url():
    return _dispatch(None)


@bp.route("/tus/<upload_id>", methods=[*METHODS, "PUT"])
def upload_url(upload_id: str):
    return _dispatch(upload_id)


def _dispatch(upload_id: str | None):
    method = (request.headers.get("X-HTTP-Method-Override") or request.method).strip().upper()
    if method == "OPTIONS":
        return _options()
    handlers: dict[str, Callable] = (
        {"POST": _create} if upload_id is None else {"HEAD": _head, "PATCH": _patch, "GET": _get, "DELETE": _delete}
    )
    handler = handlers.get(method)
    if handler is None:  # whatever the version: a method this URL never takes
        raise ApiError("method_not_allowed", headers={"Allow": ", ".join(["OPTIONS", *handlers])})
    if method != "GET" and request.headers.get("Tus-Resumable", "").strip() != TUS_VERSION:
        raise ApiError(
            "precondition_failed",
            f"This server speaks tus {TUS_VERSION}: send Tus-Resumable: {TUS_VERSION}.",
            headers={"Tus-Version": TUS_VERSION},
        )
    owner = authenticate_user().username
    return handler(owner, upload_id) if upload_id is not None else handler(owner)


# -- responses --------------------------------------------------------------------
def _empty(status: int, headers: dict[str, str]) -> Response:
    resp = Response(status=status)
    del resp.headers["Content-Type"]  # no body, so no type
    resp.headers.update(headers)
    return resp


def _upload_headers(up: TusUpload) -> dict[str, str]:
    headers: dict[str, str] = {}
    if up.offset is not None:
        headers["Upload-Offset"] = str(up.offset)
    if up.length is not None:
        headers["Upload-Length"] = str(up.length)
    elif not up.is_final:
        headers["Upload-Defer-Length"] = "1"
    if up.metadata:
        headers["Upload-Metadata"] = up.metadata
    if up.concat:
        headers["Upload-Concat"] = up.concat
    if up.expires and not up.finished:
        headers["Upload-Expires"] = http_date(up.expires)
    return headers


@bp.after_request
def _every_response(resp: Response) -> Response:
    resp.headers["Tus-Resumable"] = TUS_VERSION
    _cors(resp)
    return resp


def _cors(resp: Response) -> None:
    allowed = engine().settings.tus_cors_origin_list
    origin = request.headers.get("Origin")
    if not allowed or not origin:
        return
    if "*" in allowed:
        resp.headers["Access-Control-Allow-Origin"] = "*"
    elif origin in allowed:
        resp.headers["Access-Control-Allow-Origin"] = origin
        resp.vary.add("Origin")
    else:
        resp.vary.add("Origin")
        return
    resp.headers["Access-Control-Expose-Headers"] = CORS_EXPOSE_HEADERS
    if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
        resp.headers["Access-Control-Allow-Methods"] = ", ".join(METHODS)
        resp.headers["Access-Control-Allow-Headers"] = CORS_ALLOW_HEADERS
        resp.headers["Access-Control-Max-Age"] = "86400"


# -- the methods -------------------------------------------------------------------
def _options() -> Response:
    """Discovery (no token needed; also the CORS preflight)."""
    return _empty(
        204,
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": ",".join(EXTENSIONS),
            "Tus-Max-Size": str(engine().max_size),
            "Tus-Checksum-Algorithm": ",".join(ALGORITHMS),
        },
    )


def _create(owner: str) -> Response:
    """``POST /tus/``: a new upload (Upload-Length or Upload-Defer-Length: 1), a partial or a final one; may carry the first bytes."""
    tus = engine()
    concat = parse_concat(request.headers.get("Upload-Concat"))
    metadata = parse_metadata(request.headers.get("Upload-Metadata"))
    length = parse_uint(request.headers.get("Upload-Length"), "Upload-Length")
    defer = request.headers.get("Upload-Defer-Length")
    has_body = bool(request.content_length) or _chunked()
    if concat.kind == "final":
        if length is not None or defer is not None or has_body:
            raise ApiError("bad_request", "A final upload takes no Upload-Length, Upload-Defer-Length or body.")
        up = tus.create_final(owner, concat=concat.raw, parts=concat.parts, metadata=metadata)
    else:
        if (length is None) == (defer is None):
            raise ApiError("bad_request", "Send exactly one of Upload-Length and Upload-Defer-Length: 1.")
        if defer is not None and defer.strip() != "1":
            raise ApiError("bad_request", "Upload-Defer-Length must be 1.", details={"header": "Upload-Defer-Length"})
        if has_body and request.mimetype != OFFSET_CONTENT_TYPE:
            raise ApiError("unsupported_media_type", f"Send the upload's first bytes as {OFFSET_CONTENT_TYPE}.")
        checksum = _checksum() if has_body else None
        up = tus.create(owner, length=length, metadata=metadata, concat=concat.kind)
        if has_body:
            try:
                up = tus.append(owner, up.id, offset=0, body=_body(), checksum=checksum, content_length=request.content_length)
            except (ApiError, BodyInterrupted):
                tus.terminate_quietly(owner, up.id)  # the client never learnt its URL
                raise
    headers = {"Location": f"{request.script_root}/tus/{up.id}", **_upload_headers(up)}
    return _empty(201, headers)


def _head(owner: str, upload_id: str) -> Response:
    """``HEAD /tus/<id>``: the offset to resume at (not cached)."""
    up = engine().status(owner, upload_id)
    return _empty(200, {**_upload_headers(up), "Cache-Control": "no-store"})


def _patch(owner: str, upload_id: str) -> Response:
    """``PATCH /tus/<id>``: bytes at Upload-Offset (Upload-Length too, when it was deferred)."""
    if request.mimetype != OFFSET_CONTENT_TYPE:
        raise ApiError("unsupported_media_type", f"A PATCH body must be {OFFSET_CONTENT_TYPE}.")
    offset = parse_uint(request.headers.get("Upload-Offset"), "Upload-Offset")
    if offset is None:
        raise ApiError("bad_request", "Upload-Offset is required.", details={"header": "Upload-Offset"})
    length = parse_uint(request.headers.get("Upload-Length"), "Upload-Length")
    checksum = _checksum()
    try:
        up = engine().append(
            owner, upload_id, offset=offset, body=_body(), length=length, checksum=checksum, content_length=request.content_length
        )
    except BodyInterrupted:
        raise ApiError("bad_request", "The body ended before all of it arrived; ask for the offset (HEAD) and resume.") from None
    headers = {"Upload-Offset": str(up.offset)}
    if up.expires and not up.finished:
        headers["Upload-Expires"] = http_date(up.expires)
    return _empty(204, headers)


def _get(owner: str, upload_id: str) -> Response:
    """``GET /tus/<id>``: the finished file, as ``GET /files/<id>`` serves it."""
    tus = engine()
    record = tus.record(owner, upload_id)
    return serve(request, record, functools.partial(tus.reader.read_chunks, record))


def _delete(owner: str, upload_id: str) -> Response:
    """``DELETE /tus/<id>``: terminate an upload (or delete the file it became)."""
    engine().terminate(owner, upload_id)
    return _empty(204, {})


# -- bodies --------------------------------------------------------------------------
def _chunked() -> bool:
    return "chunked" in request.headers.get("Transfer-Encoding", "").lower()


def _body() -> Iterator[bytes]:
    """The request body in pieces; ``BodyInterrupted`` when it ends short of what was announced."""
    length = request.content_length
    stream, piece_size = direct(request.environ["wsgi.input"]), DIRECT_PIECE
    if length is None or stream is request.environ["wsgi.input"]:  # chunked, or not gunicorn's body
        stream, piece_size = get_input_stream(request.environ, max_content_length=None), PIECE
    done = 0
    while length is None or done < length:
        want = piece_size if length is None else min(piece_size, length - done)
        try:
            piece = stream.read(want)
        except Exception:  # a reset or a malformed chunk: the server or werkzeug says the body broke
            raise BodyInterrupted() from None
        if not piece:
            if length is not None:
                raise BodyInterrupted()
            return
        done += len(piece)
        yield piece


def _checksum() -> BodyChecksum | None:
    header = request.headers.get("Upload-Checksum")
    if header:
        return BodyChecksum(parse_checksum(header))
    announced = {t.strip().lower() for t in request.headers.get("Trailer", "").split(",")}
    if "upload-checksum" in announced and _chunked():
        environ = request.environ
        return BodyChecksum(lambda: request_trailers(environ).get("upload-checksum"))
    return None


def request_trailers(environ) -> dict[str, str]:
    """The trailer fields of a chunked request body, once it has been read: gunicorn keeps them on its request."""
    reader = getattr(environ.get("wsgi.input"), "reader", None)
    pairs = getattr(getattr(reader, "req", None), "trailers", None) or ()
    return {str(name).lower(): str(value) for name, value in pairs}
