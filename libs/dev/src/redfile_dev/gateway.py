"""Development gateway: routes paths to services the way the Kubernetes Ingress does.

    /auth/...   -> auth
    /admin/...  -> admin
    /internal/... -> 404 (service-to-service only, never routed from outside)
    everything else (/upload_chunk, /upload_complete, /files..., /texts..., /tus/..., /files/openapi.json) -> files

Served by gunicorn: ``gunicorn 'redfile_dev.gateway:create_gateway()'``.

The forwarding is written here rather than taken from werkzeug's
ProxyMiddleware because that one loses what an Ingress keeps: it drops a
chunked request body (no Content-Length), it answers with an HTML 502 when an
upstream stops reading early — hiding the upstream's own 413 — and its prefix
matching cannot say "everything else".  Bodies stream both ways in 64 KiB
pieces; nothing is buffered whole.  A chunked body keeps its trailer fields (tus's
``Upload-Checksum`` may come as one), and a body the client cut short ends the
upstream request at once instead of leaving the service waiting for the rest.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
from urllib.parse import quote, urlsplit

from werkzeug.datastructures import EnvironHeaders
from werkzeug.http import is_hop_by_hop_header
from werkzeug.wsgi import get_input_stream

PIECE = 64 * 1024
UPSTREAM_TIMEOUT = 300


def _json(start_response, status: str, code: str, message: str):
    body = json.dumps({"error": {"code": code, "message": message}}, separators=(",", ":")).encode()
    start_response(status, [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


def route(path: str) -> str | None:
    """The service a path belongs to, or None for paths the gateway never exposes."""
    first = path.lstrip("/").split("/", 1)[0]
    if first in ("auth", "admin"):
        return first
    if first == "internal":
        return None
    return "files"


def _request_headers(environ, host: str) -> list[tuple[str, str]]:
    headers = [
        (k, v)
        for k, v in EnvironHeaders(environ).items()
        if not is_hop_by_hop_header(k)
        and k.lower() not in ("host", "content-length", "x-forwarded-for", "x-forwarded-proto", "x-forwarded-host")
    ]
    forwarded = environ.get("HTTP_X_FORWARDED_FOR")
    remote = environ.get("REMOTE_ADDR", "")
    headers.append(("X-Forwarded-For", f"{forwarded}, {remote}" if forwarded else remote))
    headers.append(("X-Forwarded-Proto", environ.get("wsgi.url_scheme", "http")))
    if environ.get("HTTP_HOST"):
        headers.append(("X-Forwarded-Host", environ["HTTP_HOST"]))
    headers.append(("Host", host))
    headers.append(("Connection", "close"))
    return headers


def _trailers(environ) -> bytes:
    """A chunked request's trailer fields (gunicorn keeps them on its request once the body is read)."""
    reader = getattr(environ.get("wsgi.input"), "reader", None)
    pairs = getattr(getattr(reader, "req", None), "trailers", None) or ()
    return b"".join(f"{name}: {value}\r\n".encode("latin-1") for name, value in pairs)


def _send_body(environ, conn: http.client.HTTPConnection, length: int | None) -> bool:
    """Stream the request body upstream; False when the client's body ended short (a cut connection).

    Reading the client and writing the upstream fail apart: a client that went
    away must end the upstream request too (else the service waits for the
    rest of a body that never comes), while an upstream that stopped reading
    (e.g. a 413) still has an answer worth reading.
    """
    stream = get_input_stream(environ)
    chunked = length is None
    sent = 0
    while True:
        try:
            piece = stream.read(PIECE)
        except Exception:
            return False
        if not piece:
            break
        sent += len(piece)
        try:
            conn.send(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        except OSError:
            return True  # the upstream stopped reading: its answer is still worth reading
    if length is not None:
        return sent >= length
    with contextlib.suppress(OSError):
        conn.send(b"0\r\n" + _trailers(environ) + b"\r\n")
    return True


def forward(environ, start_response, target: str):
    url = urlsplit(target)
    conn = http.client.HTTPConnection(url.hostname or "127.0.0.1", url.port or 80, timeout=UPSTREAM_TIMEOUT)
    path = quote(environ.get("PATH_INFO", "/"), safe="!$&'()*+,/:;=@%")
    if environ.get("QUERY_STRING"):
        path = f"{path}?{environ['QUERY_STRING']}"
    length = environ.get("CONTENT_LENGTH") or ""
    chunked = not length and "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
    try:
        conn.putrequest(environ["REQUEST_METHOD"], path, skip_host=True, skip_accept_encoding=True)
        for key, value in _request_headers(environ, url.netloc):
            conn.putheader(key, value)
        if length:
            conn.putheader("Content-Length", length)
        elif chunked:
            conn.putheader("Transfer-Encoding", "chunked")
            if environ.get("HTTP_TRAILER"):  # hop-by-hop, but it announces the trailers forwarded below
                conn.putheader("Trailer", environ["HTTP_TRAILER"])
        conn.endheaders()
    except OSError:
        conn.close()
        return _json(start_response, "502 Bad Gateway", "bad_gateway", "The service could not be reached.")

    if (length or chunked) and not _send_body(environ, conn, int(length) if length else None):
        conn.close()  # the upstream sees its request end short, as it would behind an Ingress
        return _json(start_response, "400 Bad Request", "bad_request", "The request body ended before it was complete.")
    try:
        resp = conn.getresponse()
    except (OSError, http.client.HTTPException):
        conn.close()
        return _json(start_response, "502 Bad Gateway", "bad_gateway", "The service did not answer.")

    start_response(f"{resp.status} {resp.reason}", [(k, v) for k, v in resp.getheaders() if not is_hop_by_hop_header(k)])

    def body():
        try:
            while piece := resp.read(PIECE):
                yield piece
        except OSError:
            return
        finally:
            conn.close()

    return body()


def create_gateway(auth_url: str | None = None, files_url: str | None = None, admin_url: str | None = None):
    targets = {
        "auth": auth_url or os.environ["AUTH_URL"],
        "files": files_url or os.environ["FILES_URL"],
        "admin": admin_url or os.environ["ADMIN_URL"],
    }

    def gateway(environ, start_response):
        service = route(environ.get("PATH_INFO", "/"))
        if service is None:
            return _json(start_response, "404 Not Found", "not_found", "Not found.")
        return forward(environ, start_response, targets[service])

    return gateway
