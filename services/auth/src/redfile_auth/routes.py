"""HTTP routes: public ``/auth/...`` (user access tokens) and ``/internal/...`` (service tokens).

Each route validates with a schema, makes one domain call and serialises the
result; the docstring's line is the operation's summary in the OpenAPI document.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import request

from redfile_common.app import redfile
from redfile_common.security import current_principal, login_required, service_required

from .domain import AuthDomain
from .schemas import (
    AuthStats,
    LoginIn,
    LogoutIn,
    PageQuery,
    PasswordChangeIn,
    RefreshIn,
    TokenPair,
    User,
    UserCreateIn,
    UserPage,
    UserPatchIn,
)

public = APIBlueprint("auth", __name__, url_prefix="/auth", tag="Auth")
internal = APIBlueprint("internal", __name__, url_prefix="/internal", tag="Users (internal)")


def domain() -> AuthDomain:
    return redfile().extra["auth"]


def client_addr() -> str:
    return request.remote_addr or "unknown"


# -- public --------------------------------------------------------------------
@public.post("/login")
@public.input(LoginIn, arg_name="body")
@public.output(TokenPair)
@public.doc(responses=[401, 422, 429])
def login(body):
    """Log in with username and password; a new access and refresh token."""
    return domain().sessions.login(body["username"], body["password"], client_addr()).to_dict()


@public.post("/refresh")
@public.input(RefreshIn, arg_name="body")
@public.output(TokenPair)
@public.doc(responses=[401, 422])
def refresh(body):
    """Trade a refresh token (used up by this) for a new token pair."""
    return domain().sessions.refresh(body["refresh_token"]).to_dict()


@public.post("/logout")
@public.doc(security="BearerAuth", responses=[401, 422])
@public.output({}, status_code=204)
@login_required
@public.input(LogoutIn, arg_name="body")
def logout(body):
    """End this access token and the family of the given refresh token."""
    domain().sessions.logout(current_principal().claims, body.get("refresh_token"))
    return ""


@public.get("/me")
@public.doc(security="BearerAuth", responses=[401])
@public.output(User)
@login_required
def me():
    """The logged-in user."""
    return domain().users.get(current_principal().username).public()


@public.post("/password")
@public.doc(security="BearerAuth", responses=[401, 422, 429])
@public.output(TokenPair)
@login_required
@public.input(PasswordChangeIn, arg_name="body")
def change_password(body):
    """Change your password; every other session ends and a new token pair is returned."""
    pair = domain().sessions.change_password(current_principal().username, body["current_password"], body["new_password"], client_addr())
    return pair.to_dict()


# -- internal (service tokens addressed to auth) ---------------------------------
@internal.post("/users")
@internal.doc(security="ServiceToken", responses=[401, 409, 422])
@internal.output(User, status_code=201)
@service_required
@internal.input(UserCreateIn, arg_name="body")
def create_user(body):
    """Create a user."""
    return domain().users.create_new(body["username"], body["password"], body["role"]).public()


@internal.get("/users")
@internal.doc(security="ServiceToken", responses=[400, 401, 422])
@internal.output(UserPage)
@service_required
@internal.input(PageQuery, location="query", arg_name="query")
def list_users(query):
    """List users by username, a page at a time."""
    records, next_cursor = domain().users.page(query["limit"], query.get("cursor"))
    return {"items": [r.public() for r in records], "next_cursor": next_cursor}


@internal.get("/users/<username>")
@internal.doc(security="ServiceToken", responses=[401, 404])
@internal.output(User)
@service_required
def get_user(username):
    """One user."""
    return domain().users.get(username).public()


@internal.patch("/users/<username>")
@internal.doc(security="ServiceToken", responses=[401, 404, 409, 422])
@internal.output(User)
@service_required
@internal.input(UserPatchIn, arg_name="body")
def update_user(username, body):
    """Change a user's role, active flag or password; ends all of the user's sessions."""
    return domain().users.update(username, **body).public()


@internal.get("/stats")
@internal.doc(security="ServiceToken", responses=[401])
@internal.output(AuthStats)
@service_required
def stats():
    """How many accounts there are (for GET /admin/stats)."""
    return domain().stats()


@internal.delete("/users/<username>")
@internal.doc(security="ServiceToken", responses=[401, 404])
@internal.output({}, status_code=204)
@service_required
def delete_user(username):
    """Delete a user and end all of the user's sessions."""
    domain().users.delete(username)
    return ""
