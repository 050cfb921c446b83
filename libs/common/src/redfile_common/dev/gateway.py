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


def routes(auth_url: str, files_url: str, admin_url: str) -> dict[str, dict]:
    return {
        "/auth/": {"target": auth_url},
        "/admin/": {"target": admin_url},
        "/": {"target": files_url},
    }


def create_gateway(auth_url: str | None = None, files_url: str | None = None, admin_url: str | None = None):
    proxy = ProxyMiddleware(
        _not_found,
        routes(
            auth_url or os.environ["AUTH_URL"],
            files_url or os.environ["FILES_URL"],
            admin_url or os.environ["ADMIN_URL"],
        ),
        timeout=300,
    )

    def gateway(environ, start_response):
        # Pass the client address on, as an Ingress controller does.
        forwarded = environ.get("HTTP_X_FORWARDED_FOR")
        remote = environ.get("REMOTE_ADDR", "")
        environ["HTTP_X_FORWARDED_FOR"] = f"{forwarded}, {remote}" if forwarded else remote
        return proxy(environ, start_response)

    return gateway
