"""App factory of the auth service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_auth.accounts.http import internal
from redfile_auth.domain import build_domain
from redfile_auth.sessions.http import public
from redfile_auth.settings import AuthSettings
from redfile_common.app import attach_domain, create_service_app, redfile
from redfile_common.product_metrics import auth_metrics
from redfile_common.settings import load_settings

MAX_BODY_BYTES = 64 * 1024


def create_app(settings: AuthSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(AuthSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile auth")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    rf = redfile(app)
    auth = build_domain(
        settings, rf.redis, rf.token_state, rf.user_tokens, metrics=auth_metrics(app), events=rf.security_events, audit=rf.audit
    )
    attach_domain(app, auth)
    app.register_blueprint(public)
    app.register_blueprint(internal)
    auth.bootstrap()
    return app
