"""The files service with no per-request extras and no Redis on its metadata read, for ``bench/floor.py`` only.

As ``files_without_extras`` (no request log line, request metrics or body
checks), and the token check's one round trip (the revocation ``MGET`` with the
view's first reads) made once per token and path, then replayed from memory.
What is left of an authenticated metadata read is Flask and apiflask's
dispatch, the token's signature and claims check and the view: the least a
files app on this stack could cost per request.  Never served to anyone.
"""

from __future__ import annotations

from files_without_extras import create_app as _create_app
from flask import request


def create_app():
    app = _create_app()
    state = app.extensions["redfile"].token_state
    real, replayed = state.check, {}

    def check(claims, reads=None):
        key = (claims.sub, claims.jti, request.path)
        if key not in replayed:
            replayed[key] = real(claims, reads)
        return replayed[key]

    state.check = check
    return app
