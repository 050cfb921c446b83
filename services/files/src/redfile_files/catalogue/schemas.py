"""Schemas of the catalogue routes (texts, rename)."""

from __future__ import annotations

from apiflask.fields import String
from marshmallow import ValidationError, validates_schema

from redfile_files.schemas import FileOut, JsonIn, file_name, folder


class TextOut(FileOut):
    content = String()


class RenameIn(JsonIn):
    new_name = file_name("The new name.", required=True)


class FilePatchIn(JsonIn):
    """PATCH /files/<id>: any of these; what is left out stays."""

    name = file_name("The new name.")
    folder = folder("The folder to move it to.")

    @validates_schema
    def _something(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of name and folder.", field_name="_schema")


class TextIn(JsonIn):
    content = String(required=True)
    name = file_name("Default: text-<time>.txt.", load_default=None, allow_none=True)
    folder = folder(load_default=None, allow_none=True)
