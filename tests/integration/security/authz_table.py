"""The authorization matrix's one table: every endpoint of auth, files and admin, with its policy.

``ROWS`` has one row per (service, method, URL rule) — a few endpoints have two rows
(``variant``) because the resource decides the policy (a public or a private share
link; a new or a continued seed upload).  ``test_authz_matrix`` fails when an
endpoint of an app's ``url_map`` has no row, or a row names no endpoint.

A row's ``policy`` gives every principal its expected status (``expected``); the
status an authorized principal gets is the row's ``ok`` (the real success code),
so every row also proves its authorized path works.  ``expect`` overrides single
cells, with the reason in ``note``.

Principals (what the ``Authorization`` header holds):

====================  =============================================================
anonymous             no header
owner                 a user token of the resource's owner (for ``recipient``
                      rows: the user the resource is shared with)
other                 a user token of another, ordinary user
admin                 a user token with the admin role
service               a valid service token (from admin) addressed to the row's service
service_other_caller  a valid service token addressed to the row's service from another
                      caller (auth or files)
service_wrong_aud     a valid service token addressed to another service
user_wrong_aud        a user-keyring access token whose ``aud`` is the row's service
                      (a user token minted for another audience)
expired               the row's natural credential (below), expired an hour ago
tampered              the natural credential with its payload changed (role ->
                      admin, exp + 1 h), signature kept
retired_key           the natural credential signed by a key no longer in the ring
other_keyring         the natural credential signed by the *other* keyring (a user
                      token signed with a service key, or the reverse)
revoked               the natural user's token from before their token version was
                      bumped (password change, disable, role change)
logged_out            the natural user's token after logout (its jti denied)
basic                 ``Basic <base64>`` instead of a bearer token
bearer_empty          ``Bearer`` with no token
garbage               ``Bearer not-a-jwt``
====================  =============================================================

The natural credential of a row is what its authorized principal presents: a
service token for ``internal`` rows, the admin's token for ``admin`` rows, the
owner's token everywhere else.

What the product promises (docs/contracts.md, README, the routes' docs) and the
table therefore says:

* ``/internal/...`` takes service tokens addressed to that service only: any
  other credential is 401 (docs/architecture.md, "Token model").
* Public routes take user access tokens only: a service token is 401.
* Admin routes: 401 without a valid token, 403 for a valid non-admin token
  (authentication runs before validation, so nothing about the input leaks).
* Another user's file, upload, tus upload, share or recipient list is 404 — the
  same answer, byte for byte, as a missing one ("No such file (or not yours)"):
  existence is hidden, never 403 (the test compares the two bodies).  Admins see and manage every file through the owners' file
  routes (``owner_or_admin``), but sharing is the owner's act and uploads are
  the uploader's (``owner``: an admin gets 404 too).
* A public share link ignores credentials entirely (any header, even a bad
  token, downloads); a private one opens for its owner and the file's
  recipients, is a 404 to everybody else (its QR codes too), and a bad token
  on it is a 401.
* Routes that need no token (login, refresh, health, the OpenAPI documents,
  tus discovery) ignore whatever ``Authorization`` holds.
"""

from __future__ import annotations

from dataclasses import dataclass, field

PRINCIPALS = (
    "anonymous",
    "owner",
    "other",
    "admin",
    "service",
    "service_other_caller",
    "service_wrong_aud",
    "user_wrong_aud",
    "expired",
    "tampered",
    "retired_key",
    "other_keyring",
    "revoked",
    "logged_out",
    "basic",
    "bearer_empty",
    "garbage",
)

# Credentials that never authenticate anyone, wherever a token is checked.
BROKEN = (
    "user_wrong_aud",
    "expired",
    "tampered",
    "retired_key",
    "other_keyring",
    "revoked",
    "logged_out",
    "basic",
    "bearer_empty",
    "garbage",
)
# Valid service tokens for the row's service: what /internal/... accepts.  The audience decides, not the
# caller (docs/contracts.md: "service tokens with aud redfile-<svc> only"; every service holds the one
# service keyring, so a caller check could not be enforced anyway).
SERVICE_TOKENS = ("service", "service_other_caller")

POLICIES = {
    "public": "no token needed; the Authorization header is ignored",
    "user": "any valid user access token (the caller's own data)",
    "owner": "the resource's owner only; anyone else 404, admins included",
    "owner_or_admin": "the resource's owner or an admin; another user 404",
    "recipient": "the user the file is shared with ('owner' here); anyone else 404",
    "admin": "an admin's access token; other users 403",
    "internal": "a service token addressed to this service only",
    "link_public": "a public share link: anyone, whatever the header",
    "link_private": "a private share link: its owner (and recipients); anyone else 404, a bad token 401",
    "not_allowed": "a method the endpoint does not support: 405 for everyone",
}


def expected(policy: str, ok: int, principal: str) -> int:
    """The status ``principal`` gets from an endpoint of ``policy`` whose success is ``ok``."""
    if policy in ("public", "link_public"):
        return ok
    if policy == "not_allowed":
        return 405
    if policy == "internal":
        return ok if principal in SERVICE_TOKENS else 401
    if policy == "link_private":
        return {"anonymous": 404, "owner": ok, "other": 404, "admin": 404}.get(principal, 401)
    # every policy below authenticates a user access token first
    if principal not in ("owner", "other", "admin"):
        return 401
    if policy == "user":
        return ok
    if policy == "admin":
        return ok if principal == "admin" else 403
    if policy in ("owner", "recipient"):
        return ok if principal == "owner" else 404
    if policy == "owner_or_admin":
        return 404 if principal == "other" else ok
    raise ValueError(f"unknown policy {policy!r}")


def expected_code(policy: str, principal: str, status: int) -> str | None:
    """The error code a refused request carries, where the table pins it (None: not checked)."""
    if status == 401 and policy not in ("public", "link_public"):
        if principal in ("anonymous", "basic", "bearer_empty"):
            return "unauthorized"
        if principal in ("revoked", "logged_out") and policy != "internal":
            return "token_revoked"
        return "invalid_token"
    if status == 403:
        return "forbidden"
    if status == 405:
        return "method_not_allowed"
    return None


@dataclass(frozen=True)
class Row:
    service: str  # auth | files | admin
    method: str
    rule: str  # exactly as in the app's url_map
    policy: str
    ok: int  # the authorized principal's status
    setup: tuple[str, ...] = ()  # resources made fresh for every cell (see the World in test_authz_matrix)
    path: str | None = None  # the request path, {placeholders} from the resources; default: the rule
    json: object = None
    data: bytes | None = None
    headers: dict = field(default_factory=dict)
    variant: str = ""
    expect: dict = field(default_factory=dict)  # principal -> status, overriding the policy
    note: str = ""

    @property
    def key(self) -> tuple[str, str, str]:
        return self.service, self.method, self.rule

    @property
    def id(self) -> str:
        return f"{self.service} {self.method} {self.rule}" + (f" [{self.variant}]" if self.variant else "")

    def status_for(self, principal: str) -> int:
        return self.expect.get(principal, expected(self.policy, self.ok, principal))


B64 = "aGVsbG8="  # b"hello"
PASSWORD = "password-123"
TUS = {"Tus-Resumable": "1.0.0"}
TUS_PATCH = {**TUS, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"}
TUS_CREATE = {**TUS, "Upload-Length": "5", "Upload-Metadata": "filename aGVsbG8udHh0"}

_STATIC = "no static folder: the route exists (Flask's default) and 404s for everyone"
_TUS_405 = "not a tus method of this URL: 405 (with Allow) before any token is looked at"

ROWS: tuple[Row, ...] = (
    # ---- auth: public ------------------------------------------------------------------------------
    Row("auth", "POST", "/auth/login", "public", 200, ("auth_users",), json={"username": "{owner}", "password": PASSWORD}),
    Row("auth", "POST", "/auth/refresh", "public", 200, ("auth_users", "refresh"), json={"refresh_token": "{refresh}"}),
    Row("auth", "POST", "/auth/logout", "user", 204, ("auth_users",), json={}),
    Row("auth", "GET", "/auth/me", "user", 200, ("auth_users",)),
    Row(
        "auth", "POST", "/auth/password", "user", 200, ("auth_users",), json={"current_password": PASSWORD, "new_password": "password-456"}
    ),
    Row("auth", "GET", "/auth/docs", "public", 200),
    Row("auth", "GET", "/auth/openapi.json", "public", 200),
    Row("auth", "GET", "/internal/openapi.json", "public", 200),  # the internal document; the gateway routes no /internal/
    Row("auth", "GET", "/auth/docs-assets/<path:filename>", "public", 200, path="/auth/docs-assets/swagger-ui.css"),
    Row("auth", "GET", "/docs/oauth2-redirect", "public", 200),
    Row("auth", "GET", "/healthz", "public", 200),
    Row("auth", "GET", "/readyz", "public", 200),
    Row("auth", "GET", "/static/<path:filename>", "public", 404, path="/static/x.txt", note=_STATIC),
    # ---- auth: internal ------------------------------------------------------------------------------
    Row("auth", "POST", "/internal/users", "internal", 201, json={"username": "{fresh}", "password": PASSWORD, "role": "user"}),
    Row("auth", "GET", "/internal/users", "internal", 200),
    Row("auth", "GET", "/internal/users/<username>", "internal", 200, ("target",), path="/internal/users/{target}"),
    Row(
        "auth", "PATCH", "/internal/users/<username>", "internal", 200, ("target",), path="/internal/users/{target}", json={"active": True}
    ),
    Row("auth", "DELETE", "/internal/users/<username>", "internal", 204, ("target",), path="/internal/users/{target}"),
    Row("auth", "GET", "/internal/stats", "internal", 200),
    # ---- files: seed uploads, files, texts -----------------------------------------------------------
    Row("files", "POST", "/upload_chunk", "user", 201, variant="new", json={"chunk_index": 0, "total_chunks": 1, "chunk_data": B64}),
    Row(
        "files",
        "POST",
        "/upload_chunk",
        "owner",
        200,
        ("seed",),
        variant="continue",
        json={"file_id": "{seed}", "chunk_index": 1, "total_chunks": 2, "chunk_data": B64},
        note="a later chunk of the owner's upload; another user's upload is a missing one",
    ),
    Row(
        "files", "POST", "/upload_complete", "owner", 201, ("seed_whole",), json={"file_id": "{seed}", "name": "seed.txt", "total_size": 5}
    ),
    Row("files", "GET", "/files", "user", 200),
    Row("files", "POST", "/files", "user", 201, json={"name": "one.txt", "data": B64}),
    Row("files", "GET", "/files/<file:file_id>", "owner_or_admin", 206, ("file",), path="/files/{file}", headers={"Range": "bytes=0-1"}),
    Row("files", "HEAD", "/files/<file:file_id>", "owner_or_admin", 200, ("file",), path="/files/{file}"),
    Row("files", "GET", "/files/<file_id>/meta", "owner_or_admin", 200, ("file",), path="/files/{file}/meta"),
    Row(
        "files",
        "POST",
        "/files/<file_id>/rename",
        "owner_or_admin",
        200,
        ("file",),
        path="/files/{file}/rename",
        json={"new_name": "renamed.txt"},
    ),
    Row("files", "PATCH", "/files/<file:file_id>", "owner_or_admin", 200, ("file",), path="/files/{file}", json={"folder": "/moved"}),
    Row("files", "DELETE", "/files/<file:file_id>", "owner_or_admin", 204, ("file",), path="/files/{file}"),
    Row("files", "POST", "/texts", "user", 201, json={"name": "t.txt", "content": "hello"}),
    Row("files", "GET", "/texts/<file_id>", "owner_or_admin", 200, ("text",), path="/texts/{text}"),
    Row("files", "GET", "/quota", "user", 200),
    # ---- files: upload sessions ----------------------------------------------------------------------
    Row("files", "POST", "/uploads", "user", 201, json={"name": "s.bin", "total_size": 5}),
    Row("files", "GET", "/uploads/<upload_id>", "owner", 200, ("session",), path="/uploads/{upload}"),
    Row("files", "DELETE", "/uploads/<upload_id>", "owner", 204, ("session",), path="/uploads/{upload}"),
    Row(
        "files",
        "PUT",
        "/uploads/<upload_id>/chunks/<int(signed=True):index>",
        "owner",
        201,
        ("session",),
        path="/uploads/{upload}/chunks/0",
        data=b"hello",
        headers={"Content-Type": "application/octet-stream"},
    ),
    Row("files", "POST", "/uploads/<upload_id>/complete", "owner", 201, ("session_whole",), path="/uploads/{upload}/complete"),
    # ---- files: sharing -------------------------------------------------------------------------------
    Row(
        "files",
        "POST",
        "/files/<file_id>/shares",
        "owner",
        201,
        ("file",),
        path="/files/{file}/shares",
        json={},
        note="sharing is the owner's act: an admin gets 404 too",
    ),
    Row("files", "GET", "/shares", "user", 200),
    Row("files", "DELETE", "/shares/<share_id>", "owner", 204, ("file", "link"), path="/shares/{share}"),
    Row(
        "files",
        "POST",
        "/files/<file_id>/recipients",
        "owner",
        201,
        ("file",),
        path="/files/{file}/recipients",
        json={"username": "{third}"},
    ),
    Row("files", "GET", "/files/<file_id>/recipients", "owner", 200, ("file", "recipient"), path="/files/{file}/recipients"),
    Row(
        "files",
        "DELETE",
        "/files/<file_id>/recipients/<username>",
        "owner",
        204,
        ("file", "recipient"),
        path="/files/{file}/recipients/{third}",
    ),
    Row("files", "GET", "/shared-with-me", "user", 200),
    Row("files", "GET", "/shared-with-me/<file_id>", "recipient", 200, ("shared",), path="/shared-with-me/{shared}"),
    Row("files", "HEAD", "/shared-with-me/<file_id>", "recipient", 200, ("shared",), path="/shared-with-me/{shared}"),
    Row("files", "GET", "/shared-with-me/<file_id>/meta", "recipient", 200, ("shared",), path="/shared-with-me/{shared}/meta"),
    Row("files", "POST", "/send/<username>", "user", 201, path="/send/{third}", json={"name": "sent.txt", "data": B64}),
    Row(
        "files",
        "POST",
        "/files/zip",
        "owner_or_admin",
        200,
        ("file",),
        json={"file_ids": ["{file}"]},
        note="your files or files shared with you; an admin reads every file",
    ),
    *(
        Row("files", method, rule, policy, ok, ("file", setup), path=rule.replace("<token>", "{link}"), variant=variant)
        for variant, policy, setup in (("public link", "link_public", "link"), ("private link", "link_private", "private_link"))
        for method, rule, ok in (
            ("GET", "/s/<token>", 200),
            ("HEAD", "/s/<token>", 200),
            ("GET", "/s/<token>/meta", 200),
            ("GET", "/s/<token>/qr.png", 200),
            ("GET", "/s/<token>/qr.svg", 200),
        )
    ),
    # ---- files: tus -----------------------------------------------------------------------------------
    Row("files", "OPTIONS", "/tus/", "public", 204, note="tus discovery and CORS preflight: no token"),
    Row("files", "POST", "/tus/", "user", 201, headers=TUS_CREATE),
    *(Row("files", m, "/tus/", "not_allowed", 405, headers=TUS, note=_TUS_405) for m in ("GET", "HEAD", "PATCH", "DELETE", "PUT")),
    Row("files", "OPTIONS", "/tus/<upload_id>", "public", 204, ("tus",), path="/tus/{tus}", headers=TUS),
    Row("files", "HEAD", "/tus/<upload_id>", "owner", 200, ("tus",), path="/tus/{tus}", headers=TUS),
    Row("files", "PATCH", "/tus/<upload_id>", "owner", 204, ("tus",), path="/tus/{tus}", headers=TUS_PATCH, data=b"hello"),
    Row("files", "GET", "/tus/<upload_id>", "owner", 200, ("tus_done",), path="/tus/{tus}"),
    Row("files", "DELETE", "/tus/<upload_id>", "owner", 204, ("tus",), path="/tus/{tus}", headers=TUS),
    *(
        Row("files", m, "/tus/<upload_id>", "not_allowed", 405, ("tus",), path="/tus/{tus}", headers=TUS, note=_TUS_405)
        for m in ("POST", "PUT")
    ),
    # ---- files: docs, health ----------------------------------------------------------------------------
    Row("files", "GET", "/files/docs", "public", 200),
    Row("files", "GET", "/files/openapi.json", "public", 200),
    Row("files", "GET", "/internal/openapi.json", "public", 200),  # the internal document; the gateway routes no /internal/
    Row("files", "GET", "/files/docs-assets/<path:filename>", "public", 200, path="/files/docs-assets/swagger-ui.css"),
    Row("files", "GET", "/docs/oauth2-redirect", "public", 200),
    Row("files", "GET", "/healthz", "public", 200),
    Row("files", "GET", "/readyz", "public", 200),
    Row("files", "GET", "/static/<path:filename>", "public", 404, path="/static/x.txt", note=_STATIC),
    # ---- files: internal ----------------------------------------------------------------------------------
    Row("files", "GET", "/internal/files", "internal", 200),
    Row("files", "DELETE", "/internal/files/<file_id>", "internal", 204, ("file",), path="/internal/files/{file}"),
    Row("files", "DELETE", "/internal/owners/<username>/files", "internal", 200, ("file",), path="/internal/owners/{owner}/files"),
    Row("files", "GET", "/internal/owners/<username>/quota", "internal", 200, path="/internal/owners/{owner}/quota"),
    Row(
        "files",
        "PUT",
        "/internal/owners/<username>/quota",
        "internal",
        200,
        path="/internal/owners/{owner}/quota",
        json={"quota_bytes": 1_000_000},
    ),
    Row("files", "GET", "/internal/stats", "internal", 200),
    Row("files", "GET", "/internal/consistency", "internal", 200, path="/internal/consistency?max_seconds=1"),
    # ---- admin (over real auth and files, with service tokens) ---------------------------------------------
    Row("admin", "POST", "/admin/users", "admin", 201, json={"username": "{fresh}", "password": PASSWORD, "role": "user"}),
    Row("admin", "GET", "/admin/users", "admin", 200),
    Row("admin", "GET", "/admin/users/<username>", "admin", 200, ("target",), path="/admin/users/{target}"),
    Row("admin", "PATCH", "/admin/users/<username>", "admin", 200, ("target",), path="/admin/users/{target}", json={"active": True}),
    Row("admin", "DELETE", "/admin/users/<username>", "admin", 204, ("target",), path="/admin/users/{target}"),
    Row("admin", "GET", "/admin/users/<username>/quota", "admin", 200, ("target",), path="/admin/users/{target}/quota"),
    Row(
        "admin",
        "PUT",
        "/admin/users/<username>/quota",
        "admin",
        200,
        ("target",),
        path="/admin/users/{target}/quota",
        json={"quota_bytes": 1_000_000},
    ),
    Row("admin", "GET", "/admin/users/<username>/usage", "admin", 200, ("target",), path="/admin/users/{target}/usage"),
    Row("admin", "POST", "/admin/roles", "admin", 200, ("target",), json={"username": "{target}", "role": "user"}),
    Row("admin", "GET", "/admin/files", "admin", 200, ("file",)),
    Row("admin", "DELETE", "/admin/files/<file_id>", "admin", 204, ("file",), path="/admin/files/{file}"),
    Row("admin", "GET", "/admin/stats", "admin", 200),
    Row("admin", "GET", "/admin/audit", "admin", 200),
    Row("admin", "GET", "/admin/consistency", "admin", 200),
    Row("admin", "GET", "/admin/docs", "public", 200),
    Row("admin", "GET", "/admin/openapi.json", "public", 200),
    Row("admin", "GET", "/internal/openapi.json", "public", 200),  # the internal document; the gateway routes no /internal/
    Row("admin", "GET", "/admin/docs-assets/<path:filename>", "public", 200, path="/admin/docs-assets/swagger-ui.css"),
    Row("admin", "GET", "/docs/oauth2-redirect", "public", 200),
    Row("admin", "GET", "/healthz", "public", 200),
    Row("admin", "GET", "/readyz", "public", 200),
    Row("admin", "GET", "/static/<path:filename>", "public", 404, path="/static/x.txt", note=_STATIC),
)

# Paths the dev gateway must never forward (the Ingress neither): /internal/... by any spelling that
# reaches an internal route.  Each is sent with a valid service token for the service that owns it.
GATEWAY_INTERNAL = (
    ("files", "GET", "/internal/stats"),
    ("files", "GET", "/internal/files"),
    ("files", "GET", "//internal/stats"),
    ("files", "GET", "/internal/owners/{owner}/quota"),
    ("auth", "GET", "/internal/users"),
    ("auth", "GET", "/internal/stats"),
    ("auth", "POST", "/internal/users"),
    ("files", "GET", "/%69nternal/stats"),
    ("files", "GET", "/files/../internal/stats"),
    ("auth", "GET", "/auth/../internal/stats"),
    ("auth", "GET", "/./internal/stats"),
)
