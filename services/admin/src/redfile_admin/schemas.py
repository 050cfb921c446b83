"""Request and response schemas of the admin API (they also produce /admin/openapi.json).

Inputs are checked for shape only (types, required fields, known roles,
sane lengths); the rules about what a username or password may be belong to
auth, whose 4xx answers pass through unchanged.
"""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

from redfile_common.fields import StrictBoolean

ROLES = ("admin", "user")
MAX_PAGE = 200

_username = dict(validate=Length(min=1, max=64), metadata={"description": "The account's name."})


# -- inputs ------------------------------------------------------------------

class UserCreateIn(Schema):
    username = String(required=True, **_username)
    password = String(required=True, load_only=True, validate=Length(min=1, max=1024))
    role = String(load_default="user", validate=OneOf(ROLES))


class RoleChangeIn(Schema):
    username = String(required=True, **_username)
    role = String(required=True, validate=OneOf(ROLES))


class UserPatchIn(Schema):
    active = StrictBoolean(metadata={"description": "false disables the account, true enables it."})
    password = String(load_only=True, validate=Length(min=1, max=1024), metadata={"description": "A new password."})
    role = String(validate=OneOf(ROLES))

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of active, password, role.", field_name="_schema")


class PageQuery(Schema):
    limit = Integer(validate=Range(min=1, max=MAX_PAGE), metadata={"description": "Page size, 1-200 (default 50)."})
    cursor = String(validate=Length(min=1, max=512), metadata={"description": "next_cursor of the previous page."})


class FileListQuery(PageQuery):
    owner = String(**_username)


# -- outputs (the user and file shapes of docs/contracts.md) --------------------

class UserOut(Schema):
    username = String()
    role = String(metadata={"enum": list(ROLES)})
    active = Boolean()
    created_at = String(metadata={"format": "date-time"})
    updated_at = String(metadata={"format": "date-time"})


class UserPage(Schema):
    items = List(Nested(UserOut))
    next_cursor = String(allow_none=True)


class FileOut(Schema):
    id = String()
    name = String()
    size = Integer()
    owner = String()
    created_at = String(metadata={"format": "date-time"})
    updated_at = String(metadata={"format": "date-time"})
    mime_type = String()
    sha256 = String()
    kind = String(metadata={"enum": ["file", "text"]})


class FilePage(Schema):
    items = List(Nested(FileOut))
    next_cursor = String(allow_none=True)
