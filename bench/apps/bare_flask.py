"""The ceiling for HTTP: a bare Flask app, run under the same gunicorn configuration as the services.

    POST|PUT /sink          reads the request body from the stream in 1 MiB pieces and discards it
    GET /stream/<n>?chunk=  sends n bytes, streamed in pieces of ``chunk`` bytes (one buffer, sent again and again)
    GET /tiny               a tiny JSON response

No auth, no Redis, no validation, logs, metrics or tracing of its own: what
Flask, werkzeug and gunicorn cost on this machine, and nothing else.
"""

from __future__ import annotations

from flask import Flask, Response, jsonify, request

PIECE = 1024 * 1024


def create_app() -> Flask:
    app = Flask(__name__)
    buffers: dict[int, bytes] = {}

    @app.route("/sink", methods=["POST", "PUT"])
    def sink():
        stream, total = request.stream, 0
        while piece := stream.read(PIECE):
            total += len(piece)
        return jsonify(received=total), 201

    @app.get("/stream/<int:size>")
    def stream(size: int):
        chunk = min(request.args.get("chunk", PIECE, type=int), size) or 1
        buf = buffers.setdefault(chunk, bytes(chunk))

        def body():
            left = size
            while left > 0:
                yield buf if left >= chunk else buf[:left]
                left -= chunk

        response = Response(body(), mimetype="application/octet-stream", direct_passthrough=True)
        response.headers["Content-Length"] = str(size)
        return response

    @app.get("/tiny")
    def tiny():
        return jsonify(ok=True)

    @app.get("/readyz")
    def ready():
        return jsonify(status="ok")

    return app
