"""The files service with two routes of its own, for tests/integration/faults/test_stuck_worker.py (test only).

``GET /test/block``: a request that never returns on its own (a deadlock, a C call that never ends).
``GET /test/trickle?pieces=&size=&every=``: an answer streamed piece by piece, ``every`` seconds of the app's
own time before each piece: slow, but progressing.
"""

from __future__ import annotations

import threading
import time

from flask import Response, request

from redfile_files import create_app as files_app

FOR_GOOD = 600.0  # seconds: longer than any test; the process is gone by then


def create_app():
    app = files_app()

    @app.get("/test/block")
    def block():
        threading.Event().wait(FOR_GOOD)
        return {"released": True}

    @app.get("/test/trickle")
    def trickle():
        pieces, size, every = int(request.args["pieces"]), int(request.args["size"]), float(request.args["every"])

        def stream():
            for _ in range(pieces):
                time.sleep(every)
                yield b"x" * size

        return Response(stream(), mimetype="application/octet-stream", headers={"Content-Length": str(pieces * size)})

    return app
