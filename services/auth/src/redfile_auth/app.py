"""App factory of the auth service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_common.app import create_service_app, redfile
from redfile_common.product_metrics import auth_metrics
from redfile_common.settings import load_settings

from . import routes
from .domain import build_domain
from .settings import AuthSettings

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: AuthSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(AuthSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile auth")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    rf = redfile(app)
    auth = build_domain(
        settings, rf.redis, rf.token_state, rf.user_tokens, metrics=auth_metrics(app), events=rf.security_events, audit=rf.audit
    )
    rf.extra["auth"] = auth
    app.register_blueprint(routes.public)
    app.register_blueprint(routes.internal)
    auth.bootstrap()
    return app
