"""The files service with its per-request extras switched off, for ``bench/floor.py`` only.

No request log line, no request metrics (prometheus-flask-exporter's hooks) and
no body checks (``error_handlers``' before-request hooks): what is left of an
authenticated metadata read is Flask and apiflask's dispatch, the bearer check
and the one Redis round trip.  Never served to anyone.
"""

from __future__ import annotations

import logging

from redfile_files import create_app as _create_app


def _kept(hook) -> bool:
    return "prometheus_flask_exporter" not in hook.__module__ and "error_handlers" not in hook.__module__


def create_app():
    app = _create_app()
    logging.getLogger("redfile.request").setLevel(logging.WARNING)  # the request line's gate (logs.init_request_logging)
    for table in (app.before_request_funcs, app.after_request_funcs, app.teardown_request_funcs):
        table[None] = [hook for hook in table.get(None, []) if _kept(hook)]
    return app
