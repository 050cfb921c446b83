"""The API docs' Swagger UI files, served by the service itself.

apiflask's docs page loads Swagger UI's script, style sheet and favicon from the URLs in its
config; they point here, at the files flask-swagger-ui ships (a pinned Swagger UI 5 build), under
the service's own prefix so the front door routes them like the rest of the service: the docs
work without reaching any other site.
"""

from __future__ import annotations

from pathlib import Path

import flask_swagger_ui
from apiflask import APIFlask
from flask import Blueprint

SWAGGER_UI_DIST = Path(flask_swagger_ui.__file__).resolve().parent / "dist"

# apiflask's config key -> the file of the Swagger UI build it names
ASSETS = {
    "SWAGGER_UI_CSS": "swagger-ui.css",
    "SWAGGER_UI_BUNDLE_JS": "swagger-ui-bundle.js",
    "SWAGGER_UI_STANDALONE_PRESET_JS": "swagger-ui-standalone-preset.js",
    "DOCS_FAVICON": "favicon-32x32.png",
}


def assets_path(service_name: str) -> str:
    """Where a service serves the docs' files: ``/<service>/docs-assets``."""
    return f"/{service_name}/docs-assets"


def init_docs_assets(app: APIFlask, service_name: str) -> None:
    """Serve the Swagger UI build at ``assets_path`` and point the docs page's assets at it."""
    prefix = assets_path(service_name)
    app.register_blueprint(Blueprint("docs_assets", __name__, static_folder=SWAGGER_UI_DIST, static_url_path=prefix))
    app.config.update({key: f"{prefix}/{file}" for key, file in ASSETS.items()})
