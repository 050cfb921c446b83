"""App factory of the files service."""

from __future__ import annotations

import ctypes
import sys

from apiflask import APIFlask
from werkzeug.routing import BaseConverter, IntegerConverter

from redfile_common.app import attach_domain, create_service_app, redfile
from redfile_common.product_metrics import files_metrics
from redfile_common.settings import load_settings
from redfile_files import openapi
from redfile_files.catalogue import http as catalogue_http
from redfile_files.domain import build_domain
from redfile_files.internal import http as internal_http
from redfile_files.settings import FilesSettings
from redfile_files.sharing import http as sharing_http
from redfile_files.sharing.directory import Directory
from redfile_files.tus import http as tus_http
from redfile_files.uploads import http as uploads_http
from redfile_files.uploads.service import LARGE_FILES_HINT

# glibc's mallopt parameters
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD, _M_ARENA_MAX = -1, -3, -8
MIB = 1024 * 1024


def tune_malloc_for_chunks() -> None:
    """Fixed glibc malloc settings, so chunk-sized buffers are reused and the worker's RSS stays bounded.

    * ``M_MMAP_THRESHOLD`` 16 MiB: a chunk buffer (8 MiB by default) or a Redis
      reply of one comes from the heap and its pages are reused by the next
      request; with its own mmap, each chunk cost 2,048 fresh page faults and an
      munmap, and uploads ran at a third of the speed (docs/performance.md).
    * ``M_TRIM_THRESHOLD`` 32 MiB: at most that much free heap is kept before
      it is returned to the system (fixed, where glibc's default grows it).
    * ``M_ARENA_MAX`` 2: request and read-ahead threads share two heaps, not one
      each (glibc allows 8 per core), so what is kept is bounded per worker.

    No-op off glibc.
    """
    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(_M_MMAP_THRESHOLD, 16 * MIB)
        libc.mallopt(_M_TRIM_THRESHOLD, 32 * MIB)
        libc.mallopt(_M_ARENA_MAX, 2)
    except (OSError, AttributeError):
        pass


class AsciiIntegerConverter(IntegerConverter):
    """``<int:...>`` in a URL: ASCII digits only (werkzeug's ``\\d`` also takes "１" and "٣" for 1 and 3)."""

    regex = r"[0-9]+"


class FileIdConverter(BaseConverter):
    """``/files/<file:file_id>``: any segment but ``zip``, so ``/files/zip`` is only ``POST /files/zip`` (its 405 and
    its ``OPTIONS`` name that one method, not those of a file)."""

    regex = r"(?!zip(?:/|$))[^/]+"


def create_app(settings: FilesSettings | None = None, **overrides) -> APIFlask:
    settings = settings or load_settings(FilesSettings, overrides)
    tune_malloc_for_chunks()
    app = create_service_app(__name__, settings, title="Redfile files")
    app.url_map.converters["int"] = AsciiIntegerConverter  # before any blueprint's rules are made
    app.url_map.converters["file"] = FileIdConverter
    fm = files_metrics(app)  # now, so every series exists (at 0) from the first scrape
    # A base64 chunk is 4/3 of its bytes; 64 KiB more covers JSON and multipart framing.
    app.config["MAX_CONTENT_LENGTH"] = settings.max_request_bytes
    app.config["MAX_FORM_MEMORY_SIZE"] = settings.max_request_bytes  # a base64 chunk in a plain form field
    app.config["TOO_LARGE_HINT"] = LARGE_FILES_HINT
    # Routes whose bodies are read past MAX_CONTENT_LENGTH, and their own largest body (error_handlers.body_limit):
    # a chunk is at most MAX_CHUNK_BYTES; a tus body at most the upload's remaining bytes, so at most MAX_FILE_BYTES.
    tus_limit = (settings.max_file_bytes, "max_file_bytes")
    app.config["BODY_LIMITS"] = {
        "uploads.put_chunk": (settings.max_chunk_bytes, "max_chunk_bytes"),
        "tus.creation_url": tus_limit,
        "tus.upload_url": tus_limit,
    }
    # Their bodies are bytes whatever the Content-Type says: never parsed as JSON (error_handlers.check_json_body).
    app.config["RAW_BODY_ENDPOINTS"] = frozenset({"uploads.put_chunk", "tus.creation_url", "tus.upload_url"})
    # a chunk PUT reads exactly Content-Length bytes itself and refuses a short body (intake.body_ended_early);
    # tus reads exactly Content-Length bytes and keeps what arrived of a short one (tus._body, BodyInterrupted)
    app.config["LENGTH_CHECKED_ENDPOINTS"] = frozenset({"uploads.put_chunk", "tus.creation_url", "tus.upload_url"})
    rf = redfile(app)
    domain = build_domain(settings, rf.redis, metrics=fm, audit=rf.audit, directory=Directory(rf.services))
    attach_domain(app, domain)
    # The background sweep starts with a worker's first request, so a gunicorn master never runs it.
    app.before_request(domain.sweeper.ensure_started)
    for bp in (catalogue_http.bp, uploads_http.bp, internal_http.bp, sharing_http.bp, tus_http.bp):
        app.register_blueprint(bp)
    openapi.init_app(app, settings.max_name_bytes, settings.max_chunk_bytes)
    return app
