"""The public ``/auth/...`` routes: log in, refresh, log out, who am I, change the password.

Each route validates with a schema, makes one domain call and serialises the result; the
docstring's line is the operation's summary in the OpenAPI document.
"""

from __future__ import annotations

from apiflask import APIBlueprint
from flask import request

from redfile_auth.accounts.schemas import User
from redfile_auth.domain import AuthDomain
from redfile_auth.sessions.schemas import LoginIn, LogoutIn, PasswordChangeIn, RefreshIn, TokenPair
from redfile_common.app import domain_of
from redfile_common.security import current_principal, login_required

public = APIBlueprint("auth", __name__, url_prefix="/auth", tag="Auth")


def domain() -> AuthDomain:
    return domain_of(AuthDomain)


def client_addr() -> str:
    return request.remote_addr or "unknown"


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
