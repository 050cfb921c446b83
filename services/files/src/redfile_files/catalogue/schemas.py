"""Schemas of the catalogue routes (texts, rename)."""

from __future__ import annotations

from apiflask.fields import String

from redfile_files.schemas import FileOut, JsonIn


class TextOut(FileOut):
    content = String()


class RenameIn(JsonIn):
    new_name = String(required=True)


class TextIn(JsonIn):
    content = String(required=True)
    name = String(load_default=None, allow_none=True)
