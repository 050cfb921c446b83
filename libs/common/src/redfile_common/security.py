"""Authentication of incoming requests, shared by every service.

Public endpoints take user access tokens only; ``/internal/...`` endpoints
take service tokens addressed to this service only.  Every access token is
also checked against the user's current token version in Redis, so a
disabled, deleted or re-roled user is refused on their very next request.

Credentials come before the body: ``credentials_first`` (a before_request hook that
runs ahead of every body check) refuses a request to a route that needs a caller
when it has no token, or one whose signature, audience, type or expiry is wrong,
before anything looks at its body.  The revocation state (a Redis read) is checked
by the route's decorator, together with the route's first reads.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask import current_app, g, request

from .errors import ApiError
from .tokens import Claims, TokenError

BEARER_SCHEME = {"BearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}
SERVICE_SCHEME = {"ServiceToken": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}}


@dataclass(frozen=True)
class Principal:
    username: str
    role: str
    scopes: tuple[str, ...]
    claims: Claims

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _bearer() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ApiError("unauthorized", headers={"WWW-Authenticate": "Bearer"})
    return token.strip()


def _reject(reason: str, kind: str) -> ApiError:
    rf = current_app.extensions["redfile"]
    rf.security_events.emit("security_token_rejected", reason=reason, token_kind=kind, endpoint=request.endpoint)
    if rf.on_token_rejected:
        rf.on_token_rejected(reason, kind)
    code = "token_revoked" if reason == "revoked" else "invalid_token"
    return ApiError(code, headers={"WWW-Authenticate": 'Bearer error="invalid_token"'})


def authenticate_user(reads=None) -> Principal:
    """Verify the request's access token and its revocation state; set ``g.principal``.

    ``reads`` (a function adding read commands to a pipeline): sent in the same
    round trip as the revocation check; their replies are in ``g.reads`` once it passed.
    """
    rf = current_app.extensions["redfile"]
    token = _bearer()
    try:
        claims = rf.user_tokens.verify(token)
        g.reads = rf.token_state.check(claims, reads)
    except TokenError as exc:
        raise _reject(exc.reason, "access") from None
    principal = Principal(username=claims.sub, role=claims.role or "user", scopes=claims.scopes, claims=claims)
    g.principal = principal
    g.log_user = principal.username
    return principal


def authenticate_service() -> Claims:
    rf = current_app.extensions["redfile"]
    token = _bearer()
    try:
        claims = rf.service_tokens.verify(token)
    except TokenError as exc:
        raise _reject(exc.reason, "service") from None
    g.log_user = f"service:{claims.sub}"
    g.service_claims = claims
    return claims


CREDENTIALS = "redfile_credentials"  # a view's attribute: "user" or "service", set by the decorators below


def credentials_first() -> None:
    """before_request: a route that needs a caller refuses one without valid credentials (401) first.

    So an anonymous caller gets the 401 the route promises, never a 400 or 422 about a body it
    was not allowed to send.  Only the token itself is checked here (no Redis).
    """
    if request.method == "OPTIONS":
        return  # Flask's automatic answer (Allow), or a CORS preflight: both come without credentials
    view = current_app.view_functions.get(request.endpoint) if request.endpoint else None
    kind = getattr(view, CREDENTIALS, None)
    if kind is None:
        return
    rf = current_app.extensions["redfile"]
    token = _bearer()
    try:
        (rf.user_tokens if kind == "user" else rf.service_tokens).verify(token)
    except TokenError as exc:
        raise _reject(exc.reason, "access" if kind == "user" else "service") from None


def login_required(view=None, *, admin: bool = False, reads=None):
    """Route decorator: a valid user access token (of an admin, when ``admin=True``).

    ``reads(pipe, **view_kwargs)``: the view's first Redis reads, sent in one
    round trip with the token's revocation check (``TokenState.check``); the
    view finds their replies in ``g.reads``.  Nothing is written before the
    check passed, and nothing read is used if it fails.
    """

    def wrap(fn):
        @functools.wraps(fn)
        def inner(*args, **kwargs):
            principal = authenticate_user(functools.partial(reads, **kwargs) if reads is not None else None)
            if admin and not principal.is_admin:
                current_app.extensions["redfile"].security_events.emit(
                    "permission_denied", user=principal.username, endpoint=request.endpoint
                )
                raise ApiError("forbidden", "Admin role required.")
            return fn(*args, **kwargs)

        setattr(inner, CREDENTIALS, "user")
        return inner

    return wrap(view) if view is not None else wrap


def service_required(fn):
    """Route decorator for ``/internal/...``: a service token addressed to this service."""

    @functools.wraps(fn)
    def inner(*args, **kwargs):
        authenticate_service()
        return fn(*args, **kwargs)

    setattr(inner, CREDENTIALS, "service")
    return inner


def current_principal() -> Principal:
    return g.principal
