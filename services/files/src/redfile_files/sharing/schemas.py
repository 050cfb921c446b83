"""Schemas of the sharing routes."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range
from marshmallow import ValidationError, validates_schema

from redfile_common.fields import JsonInteger, StrictBoolean, username
from redfile_files.schemas import FileItem, JsonIn, QueryIn, file_name

MAX_ZIP_FILES = 1000


class LinkIn(JsonIn):
    password = String(load_default=None, validate=Length(1, 1024))
    expires_in = JsonInteger(load_default=None, validate=Range(1, 10 * 365 * 86400), metadata={"description": "seconds from now"})
    expires_at = DateTime(load_default=None, metadata={"description": "ISO 8601; instead of expires_in"})
    max_downloads = JsonInteger(load_default=None, validate=Range(1, 1_000_000))
    preview = StrictBoolean(load_default=True, metadata={"description": "false: always downloaded as an attachment"})
    burn_after_read = StrictBoolean(load_default=False, metadata={"description": "texts only: deleted after one read"})
    visibility = String(
        load_default="public",
        validate=OneOf(["public", "private"]),
        metadata={"description": "public: anyone with the link; private: only you and the file's recipients, logged in"},
    )

    @validates_schema
    def _one_expiry(self, data, **kwargs):
        if data.get("expires_in") is not None and data.get("expires_at") is not None:
            raise ValidationError("Give expires_in or expires_at, not both.", field_name="expires_at")


class LinkOut(Schema):
    id = String()
    file_id = String()
    created_at = String()
    expires_at = String(allow_none=True)
    max_downloads = Integer(allow_none=True)
    downloads = Integer()
    password = Boolean(metadata={"description": "whether the link has a password"})
    preview = Boolean()
    burn_after_read = Boolean()
    visibility = String()
    state = String(metadata={"description": "active, expired or used_up"})


class LinkCreatedOut(LinkOut):
    token = String(metadata={"description": "shown only now; only its SHA-256 is kept"})
    url = String(metadata={"description": "the link, on PUBLIC_URL (or the address the request came to)"})
    qr_png = String()
    qr_svg = String()


class LinkList(Schema):
    items = List(Nested(LinkOut))


class LinkQuery(QueryIn):
    file_id = String(load_default=None, validate=Length(max=64))


class PublicFileOut(Schema):
    name = String()
    size = Integer()
    mime_type = String()
    sha256 = String(allow_none=True, metadata={"description": "when the file has one (see FileOut)"})
    kind = String()
    expires_at = String(allow_none=True, metadata={"description": "when the link stops working"})
    downloads_left = Integer(allow_none=True)
    preview = Boolean()


class RecipientIn(JsonIn):
    username = username("The recipient: an account that exists, not yourself.", required=True, validate=Length(1, 64))


class RecipientList(Schema):
    recipients = List(String())


class SharedItem(FileItem):
    """A file shared with the caller."""


class SharedList(Schema):
    items = List(Nested(SharedItem))


class ZipIn(JsonIn):
    file_ids = List(String(validate=Length(1, 64)), required=True, validate=Length(1, MAX_ZIP_FILES))
    name = file_name("The zip's name.", load_default="files.zip", validate=Length(1, 200))
