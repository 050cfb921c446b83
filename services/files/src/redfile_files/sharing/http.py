"""Sharing routes: share links (public, by token), named recipients, "send to", QR codes, zips.

The public routes (``/s/<token>...``) take no account; a link's password goes
in the ``X-Share-Password`` header (never the URL, which ends up in logs).
Downloads go through the owners' streamed path (``downloads``): one Range,
ETag and If-None-Match, the safe headers; a link without preview is always an
attachment.
"""

from __future__ import annotations

import functools
import io

import segno
from apiflask import APIBlueprint
from flask import Response, request
from zipstream import ZIP_STORED, ZipStream

from redfile_common.security import authenticate_user, current_principal, login_required
from redfile_files.catalogue.downloads import content_disposition, serve
from redfile_files.domain import files_domain
from redfile_files.schemas import FileOut, doc_responses, expiry_ts
from redfile_files.sharing.schemas import (
    LinkCreatedOut,
    LinkIn,
    LinkList,
    LinkQuery,
    PublicFileOut,
    RecipientIn,
    RecipientList,
    SharedList,
    ZipIn,
)
from redfile_files.sharing.service import Sharing
from redfile_files.uploads import bodies
from redfile_files.uploads.schemas import FileJsonIn
from redfile_files.validation import validate_name

bp = APIBlueprint("shares", __name__, tag="Sharing")

USER = "BearerAuth"
PASSWORD_HEADER = "X-Share-Password"
_BINARY = {"*/*": {"schema": {"type": "string", "format": "binary"}}}  # the file's own MIME type
_LINK_ERRORS = {
    401: "A password is needed, or it is wrong (share_password_required)",
    404: "No such link (or revoked)",
    410: "The link has expired or is used up (share_gone)",
    429: "Too many wrong passwords",
}


def sharing() -> Sharing:
    return files_domain().sharing


# -- owners: links -------------------------------------------------------------------
def link_url(token: str) -> str:
    """Where users open a link: on PUBLIC_URL; else the request's host (the proxy's only behind TRUSTED_PROXY_HOPS)."""
    return f"{sharing().settings.public_base or request.host_url}s/{token}"


def _link_out(view, token: str | None = None) -> dict:
    out = dict(view.__dict__)
    if token:
        url = link_url(token)
        out |= {"token": token, "url": url, "qr_png": f"{url}/qr.png", "qr_svg": f"{url}/qr.svg"}
    return out


@bp.post("/files/<file_id>/shares")
@login_required
@bp.input(LinkIn)
@bp.output(LinkCreatedOut, status_code=201, description="The link; its token is shown only now")
@bp.doc(security=USER, responses={401: "Missing or invalid token", 404: "No such file (or not yours)", 422: "Bad options"})
def create_link(file_id, json_data):
    """Create a share link to one of your files or texts: password, expiry, download limit, preview, burn-after-read."""
    service = sharing()
    view, token = service.create_link(
        current_principal(),
        file_id,
        password=json_data["password"],
        expires_ts=expiry_ts(json_data, service.catalogue.clock()),
        max_downloads=json_data["max_downloads"],
        preview=json_data["preview"],
        burn_after_read=json_data["burn_after_read"],
        visibility=json_data["visibility"],
    )
    return _link_out(view, token), 201


@bp.get("/shares")
@login_required
@bp.input(LinkQuery, location="query")
@bp.output(LinkList)
@bp.doc(security=USER, responses={401: "Missing or invalid token"})
def list_links(query_data):
    """Your share links (all, or one file's) with their download counts, newest first."""
    return {"items": [_link_out(v) for v in sharing().list_links(current_principal().username, query_data["file_id"])]}


@bp.delete("/shares/<share_id>")
@login_required
@bp.output({}, status_code=204, description="Revoked: the link is 404 from now on")
@bp.doc(security=USER, responses={401: "Missing or invalid token", 404: "No such link (or not yours)"})
def revoke_link(share_id):
    """Revoke a share link at once."""
    sharing().revoke(current_principal(), share_id)
    return ""


# -- anyone with the link ---------------------------------------------------------------
def _viewer():
    """Who is asking (a principal), for a private link: None without a token; a bad token is a 401 as anywhere."""
    return authenticate_user() if request.headers.get("Authorization") else None


def _client() -> str:
    """The caller's address (``X-Forwarded-For`` only behind TRUSTED_PROXY_HOPS): counted by the link's password
    limit, and whose resume allowance a download is."""
    return request.remote_addr or "unknown"


def _safe(response: Response) -> Response:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the URL
    return response


def _stream(service: Sharing, record, *, attachment: bool, on_body=None) -> Response:
    """The owners' download path (``serve``); a link without preview is always an attachment."""
    response = serve(request, record, functools.partial(service.reader.read_chunks, record), on_body=on_body)
    if attachment:
        response.headers["Content-Disposition"] = content_disposition(record.name, "attachment")
    return response


@bp.get("/s/<token>")
@bp.doc(
    responses=doc_responses(
        {
            200: {"description": "The file (HEAD: headers only)", "content": _BINARY},
            206: "One byte range",
            304: {"description": "Not modified"},  # no body: no content
            416: "Range past the end",
            **_LINK_ERRORS,
        }
    )
)
def link_download(token):
    """Download through a share link (no account); each transfer counts once against its limit.

    A request with a body counts one download, unless it is a resume: a `Range` that does not start at
    byte 0, from a client (address) that had a download counted within `SHARE_RESUME_WINDOW` (default an
    hour), while that client's resumes stay within the file's size in all. A resume works even once the
    link is used up. A HEAD, a 304 and `/meta` never count."""
    service = sharing()
    opened = service.open_link(token, request.headers.get(PASSWORD_HEADER), reserve=False, viewer=_viewer, client=_client(), download=True)
    record = opened.record
    if opened.link.burn_after_read and request.method == "GET":  # a text: counted, read whole, then gone
        opened, data = service.read_and_burn(opened)
        response = Response(data, content_type=record.mime_type)
        response.headers["Content-Disposition"] = content_disposition(record.name, "inline" if opened.link.preview else "attachment")
        response.headers["Content-Security-Policy"] = "sandbox"
        return _safe(response)

    def counted(span) -> None:  # before a byte is read: of N racing downloads of the last one, one wins
        service.used(service.reserve(opened, span), ranged=span is not None)

    return _safe(_stream(service, record, attachment=not opened.link.preview, on_body=counted))


@bp.get("/s/<token>/meta")
@bp.output(PublicFileOut)
@bp.doc(responses=_LINK_ERRORS)
def link_meta(token):
    """What a share link holds (name, size, type); does not count as a download."""
    opened = sharing().open_link(token, request.headers.get(PASSWORD_HEADER), reserve=False, viewer=_viewer, client=_client())
    record, link = opened.record, opened.link
    left = None if link.max_downloads is None else max(0, link.max_downloads - link.downloads)
    return {
        "name": record.name,
        "size": record.size,
        "mime_type": record.mime_type,
        "sha256": record.sha256 or None,
        "kind": record.kind,
        "expires_at": link.expires_at,
        "downloads_left": left,
        "preview": link.preview,
    }


def _qr(token: str, kind: str) -> Response:
    service = sharing()
    # unknown, revoked, expired, or private and not yours: no code
    service.open_link(token, None, reserve=False, check_password=False, viewer=_viewer)
    qr = segno.make(link_url(token), error="m")
    buf = io.BytesIO()
    qr.save(buf, kind=kind, scale=6, border=4)
    response = Response(buf.getvalue(), content_type="image/png" if kind == "png" else "image/svg+xml")
    response.headers["Content-Security-Policy"] = "sandbox"
    return _safe(response)


@bp.get("/s/<token>/qr.png")
@bp.doc(
    responses=doc_responses({200: {"description": "The link's QR code", "content": {"image/png": {}}}, 404: "No such link", 410: "Gone"})
)
def link_qr_png(token):
    """The share link as a QR code (PNG)."""
    return _qr(token, "png")


@bp.get("/s/<token>/qr.svg")
@bp.doc(
    responses=doc_responses(
        {200: {"description": "The link's QR code", "content": {"image/svg+xml": {}}}, 404: "No such link", 410: "Gone"}
    )
)
def link_qr_svg(token):
    """The share link as a QR code (SVG)."""
    return _qr(token, "svg")


# -- named users ----------------------------------------------------------------------
@bp.post("/files/<file_id>/recipients")
@login_required
@bp.input(RecipientIn)
@bp.output(RecipientList, status_code=201)
@bp.doc(
    security=USER,
    responses={401: "Missing or invalid token", 404: "No such file (or not yours), or no such user (user_not_found)", 422: "Bad username"},
)
def add_recipient(file_id, json_data):
    """Share one of your files read-only with a user, by username."""
    return {"recipients": sharing().add_recipient(current_principal(), file_id, json_data["username"])}, 201


@bp.get("/files/<file_id>/recipients")
@login_required
@bp.output(RecipientList)
@bp.doc(security=USER, responses={401: "Missing or invalid token", 404: "No such file (or not yours)"})
def list_recipients(file_id):
    """Who a file of yours is shared with."""
    return {"recipients": sharing().recipients(current_principal(), file_id)}


@bp.delete("/files/<file_id>/recipients/<username>")
@login_required
@bp.output({}, status_code=204)
@bp.doc(security=USER, responses={401: "Missing or invalid token", 404: "No such file or recipient"})
def remove_recipient(file_id, username):
    """Stop sharing a file with a user (at once)."""
    sharing().remove_recipient(current_principal(), file_id, username)
    return ""


@bp.get("/shared-with-me")
@login_required
@bp.output(SharedList)
@bp.doc(security=USER, responses={401: "Missing or invalid token"})
def shared_with_me():
    """Files other users share with you, newest first."""
    return {"items": sharing().shared_with_me(current_principal())}


@bp.get("/shared-with-me/<file_id>")
@login_required
@bp.doc(
    security=USER,
    responses=doc_responses(
        {
            200: {"description": "The file", "content": _BINARY},
            206: "One byte range",
            304: {"description": "Not modified"},  # no body: no content
            401: "Missing or invalid token",
            404: "No such file (or not shared with you)",
        }
    ),
)
def shared_download(file_id):
    """Download a file shared with you (read-only), on the owners' streamed path."""
    service, user = sharing(), current_principal()
    record = service.shared_file(user, file_id)
    return _stream(service, record, attachment=False, on_body=lambda span: service.recipient_used(user.username, record))


@bp.get("/shared-with-me/<file_id>/meta")
@login_required
@bp.output(FileOut)
@bp.doc(security=USER, responses={401: "Missing or invalid token", 404: "No such file (or not shared with you)"})
def shared_meta(file_id):
    """A shared file's metadata."""
    return sharing().shared_file(current_principal(), file_id)


@bp.post("/send/<username>")
@login_required
@bp.output(FileOut, status_code=201, description="Stored (yours) and shared with the recipient")
@bp.doc(
    security=USER,
    responses={
        400: "Bad name or MIME type",
        401: "Missing or invalid token",
        404: "No such user (user_not_found)",
        413: "Too large",
        415: "Unsupported content type",
        422: "Bad username",
    },
)
def send_to(username):
    """Upload a small file straight to a user (multipart `file`, or JSON with base64 `data`): the seed's "send to"."""
    service = sharing()
    limit = service.settings.max_single_upload_bytes
    return service.send(current_principal(), username, lambda: bodies.read_file_upload(request, FileJsonIn(), max_bytes=limit)), 201


# -- several files as one zip -------------------------------------------------------------
@bp.post("/files/zip")
@login_required
@bp.input(ZipIn)
@bp.doc(
    security=USER,
    responses=doc_responses(
        {
            200: {"description": "A zip (stored, ZIP64 when needed), streamed", "content": {"application/zip": {}}},
            400: "The zip's name is not allowed (invalid_name)",
            401: "Missing or invalid token",
            404: "One of the files is not yours or missing",
        }
    ),
)
def zip_files(json_data):
    """Several of your files (or files shared with you) as one zip, streamed: no temporary file, memory flat."""
    service = sharing()
    zip_name = validate_name(json_data["name"])  # it goes out in Content-Disposition: the same rules as a file's
    zs = ZipStream(compress_type=ZIP_STORED, sized=True)
    for name, record in service.zip_entries(current_principal(), json_data["file_ids"]):
        # read lazily: the chunks of a file are fetched only when the zip reaches it
        zs.add(_lazy(service, record), name, size=record.size)
    response = Response(iter(zs), content_type="application/zip", direct_passthrough=True)
    response.headers["Content-Length"] = str(len(zs))
    response.headers["Content-Disposition"] = content_disposition(zip_name, "attachment")
    return _safe(response)


def _lazy(service: Sharing, record):
    yield from service.reader.read_chunks(record)


__all__ = ["bp"]
