"""Schemas of the catalogue routes (texts, rename)."""

from __future__ import annotations

from apiflask.fields import String

from redfile_files.schemas import FileOut, JsonIn, file_name, folder


class TextOut(FileOut):
    content = String()


class RenameIn(JsonIn):
    new_name = file_name("The new name.", required=True)


class TextIn(JsonIn):
    content = String(required=True)
    name = file_name("Default: text-<time>.txt.", load_default=None, allow_none=True)
    folder = folder(load_default=None, allow_none=True)
