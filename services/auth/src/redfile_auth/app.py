"""App factory of the auth service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_common.app import create_service_app
from redfile_common.settings import load_settings

from .settings import AuthSettings


def create_app(settings: AuthSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(AuthSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile auth")
    return app
