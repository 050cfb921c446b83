"""App factory of the files service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_common.app import create_service_app
from redfile_common.settings import load_settings

from .settings import FilesSettings


def create_app(settings: FilesSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(FilesSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile files")
    return app
