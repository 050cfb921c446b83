"""Schemas of the session routes; they validate input and make the OpenAPI document."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Integer, String
from apiflask.validators import Length

from redfile_auth.validation import PASSWORD_MAX
from redfile_common.fields import password, username

# Class names are the OpenAPI component names (User, TokenPair, ...).
# Generous bounds at the edge; the exact rules (validation.py) are checked by the domain.
_NAME = Length(min=1, max=64)
_PASSWORD = Length(min=1, max=PASSWORD_MAX)
_REFRESH = Length(min=1, max=256)


class LoginIn(Schema):
    username = username(required=True, validate=_NAME)
    password = password(required=True, validate=_PASSWORD)


class RefreshIn(Schema):
    refresh_token = String(required=True, validate=_REFRESH)


class LogoutIn(Schema):
    refresh_token = String(validate=_REFRESH)


class PasswordChangeIn(Schema):
    current_password = password("The password now.", required=True, validate=_PASSWORD)
    new_password = password("The new password.", required=True, validate=_PASSWORD)


class TokenPair(Schema):
    access_token = String(required=True)
    refresh_token = String(required=True)
    token_type = String(required=True, metadata={"example": "Bearer"})
    expires_in = Integer(required=True, metadata={"description": "Seconds the access token lives."})
