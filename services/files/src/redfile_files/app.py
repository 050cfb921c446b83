"""App factory of the files service."""

from __future__ import annotations

from apiflask import APIFlask

from redfile_common.app import create_service_app, redfile
from redfile_common.settings import load_settings

from . import internal, openapi, routes
from .domain import FilesService
from .settings import FilesSettings
from .storage import FileStore


def create_app(settings: FilesSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(FilesSettings, overrides)
    app = create_service_app(__name__, settings, title="Redfile files")
    # A base64 chunk is 4/3 of its bytes; 64 KiB more covers JSON and multipart framing.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_request_bytes  # a base64 chunk in a plain form field
    store = FileStore(redfile(app).redis, upload_ttl=settings.upload_ttl, max_file_bytes=settings.max_file_bytes)
    app.extensions["redfile_files"] = FilesService(store, settings)
    app.register_blueprint(routes.bp)
    app.register_blueprint(internal.bp)
    openapi.init_app(app)
    return app
