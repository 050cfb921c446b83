"""App factory of the files service."""

from __future__ import annotations

import ctypes
import sys

from apiflask import APIFlask

from redfile_common.app import create_service_app, redfile
from redfile_common.settings import load_settings

from . import internal, openapi, routes, upload_routes
from .crypto import Encryption, parse_master_keys
from .domain import FilesService
from .reconcile import Sweeper
from .settings import FilesSettings
from .storage import FileStore


_M_MMAP_THRESHOLD = -3  # glibc's mallopt parameter


def keep_big_buffers_out_of_the_heap() -> None:
    """Serve every allocation over 1 MiB (a chunk, a Redis reply) with its own mmap, returned on free.

    glibc otherwise raises its mmap threshold after the first big free (up to
    32 MiB), so later chunk buffers come from the heap, whose free space is
    kept: a worker's RSS would creep up with each request instead of staying
    at about the chunks in flight (docs/performance.md).  No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        ctypes.CDLL("libc.so.6").mallopt(_M_MMAP_THRESHOLD, 1024 * 1024)
    except (OSError, AttributeError):
        pass


def create_app(settings: FilesSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(FilesSettings, overrides)
    keep_big_buffers_out_of_the_heap()
    app = create_service_app(__name__, settings, title="Redfile files")
    # A base64 chunk is 4/3 of its bytes; 64 KiB more covers JSON and multipart framing.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_request_bytes  # a base64 chunk in a plain form field
    store = FileStore(redfile(app).redis, upload_ttl=settings.upload_ttl, max_file_bytes=settings.max_file_bytes)
    service = FilesService(store, settings, encryption=Encryption(parse_master_keys(settings.encryption_keys)))
    app.extensions["redfile_files"] = service
    # The background sweep starts with a worker's first request, so a gunicorn master never runs it.
    sweeper = Sweeper(service.reconciler, settings.sweep_interval)
    app.extensions["redfile_files_sweeper"] = sweeper
    app.before_request(sweeper.ensure_started)
    app.register_blueprint(routes.bp)
    app.register_blueprint(upload_routes.bp)
    app.register_blueprint(internal.bp)
    openapi.init_app(app)
    return app
