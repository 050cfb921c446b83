"""App factory of the admin service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_admin.domain import build_domain
from redfile_admin.http import bp
from redfile_admin.settings import AdminSettings
from redfile_common.app import attach_domain, create_service_app, redfile
from redfile_common.settings import load_settings

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: AdminSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(AdminSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile admin")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES  # its bodies are small JSON: a user, a role, a quota
    attach_domain(app, build_domain(redfile(app)))
    app.register_blueprint(bp)
    return app
