"""Development gateway: routes paths to services the way the Kubernetes Ingress does.

    /auth/...   -> auth
    /admin/...  -> admin
    everything else (/upload_chunk, /upload_complete, /files..., /texts..., /files/openapi.json) -> files

Served by gunicorn: ``gunicorn 'redfile_common.dev.gateway:create_gateway()'``.
"""

from __future__ import annotations

import os

from werkzeug.middleware.http_proxy import ProxyMiddleware


def _not_found(environ, start_response):
    body = b'{"error":{"code":"not_found","message":"Not found."}}'
    start_response("404 NOT FOUND", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
    return [body]


SERVICES = ("auth", "admin", "files")


def route(path: str) -> str | None:
    """The service a path belongs to, or None for paths the gateway never exposes."""
    first = path.lstrip("/").split("/", 1)[0]
    if first in ("auth", "admin"):
        return first
    if first == "internal":
        return None  # service-to-service only, as behind the Ingress
    return "files"


def create_gateway(auth_url: str | None = None, files_url: str | None = None, admin_url: str | None = None):
    urls = {
        "auth": auth_url or os.environ["AUTH_URL"],
        "files": files_url or os.environ["FILES_URL"],
        "admin": admin_url or os.environ["ADMIN_URL"],
    }
    # ProxyMiddleware does the proxying (streaming both ways, hop-by-hop headers);
    # routing is ours, because its prefix matching cannot express "everything else".
    proxy = ProxyMiddleware(_not_found, {f"/{s}/": {"target": url} for s, url in urls.items()}, timeout=300)
    options = {s: proxy.targets[f"/{s}/"] for s in SERVICES}

    def gateway(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        service = route(path)
        if service is None:
            return _not_found(environ, start_response)
        # Pass the client address on, as an Ingress controller does.
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        remote = environ.get("REMOTE_ADDR", "")
        environ["HTTP_X_FORWARDED_FOR"] = f"{forwarded}, {remote}" if forwarded else remote
        return proxy.proxy_to(options[service], path, "")(environ, start_response)

    return gateway
