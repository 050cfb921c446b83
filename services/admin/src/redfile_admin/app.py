"""App factory of the admin service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_common.app import create_service_app
from redfile_common.settings import load_settings

from . import routes
from .settings import AdminSettings

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: AdminSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(AdminSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile admin")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # its bodies are small JSON: a user, a role, a quota
    app.register_blueprint(routes.bp)
    return app
