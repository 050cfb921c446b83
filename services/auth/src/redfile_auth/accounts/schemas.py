"""Schemas of the account routes; they validate input and make the OpenAPI document."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range

from redfile_auth.validation import PASSWORD_MAX, ROLES
from redfile_common.fields import StrictBoolean, password, username

# Class names are the OpenAPI component names (User, TokenPair, ...).
# Generous bounds at the edge; the exact rules (validation.py) are checked by the domain.
_NAME = Length(min=1, max=64)
_PASSWORD = Length(min=1, max=PASSWORD_MAX)


class User(Schema):
    id = String(required=True, metadata={"description": "the account's immutable id: never reused, not even for the same name"})
    username = String(required=True)
    role = String(required=True, validate=OneOf(ROLES))
    active = Boolean(required=True)
    created_at = String(required=True, metadata={"example": "2026-11-26T08:43:19Z"})
    updated_at = String(required=True, metadata={"example": "2026-11-26T08:43:19Z"})


class UserCreateIn(Schema):
    username = username(required=True, validate=_NAME)
    password = password(required=True, validate=_PASSWORD)
    role = String(load_default="user", validate=OneOf(ROLES))


class UserPatchIn(Schema):
    role = String(validate=OneOf(ROLES))
    active = StrictBoolean()  # JSON booleans only: not "yes", not 1
    password = password(validate=_PASSWORD)


class PageQuery(Schema):
    limit = Integer(load_default=50, validate=Range(min=1, max=200))
    cursor = String(validate=Length(min=1, max=128))


class UserPage(Schema):
    items = List(Nested(User), required=True)
    next_cursor = String(required=True, allow_none=True)


class AuthStats(Schema):
    users = Integer(metadata={"description": "Accounts, enabled or not."})
