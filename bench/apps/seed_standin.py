"""The peer: OUR RE-IMPLEMENTATION of the seed's described design, not the seed's code (which is not here).

What ../shared/SEED.md says the upstream app does, and what this does: a single
Flask process (Flask's own server, threaded) that takes a whole file in one
multipart form upload, stores it base64-encoded as pieces of a Redis list, and
reassembles it in memory to send it back; uploads over 50 MiB are refused by
default (``MAX_CONTENT_LENGTH``).  No login, sharing, expiry or dashboard: they
would only add work, so leaving them out flatters the peer, not Redfile.

    python bench/apps/seed_standin.py --port 5000 --redis redis://127.0.0.1:6379/0 [--max-mib 50]

    POST /upload        multipart part ``file``  -> {"id": ...}
    GET  /files/<id>    the file (send_file from memory)
    DELETE /files/<id>
"""

from __future__ import annotations

import argparse
import base64
import io
import sys
import uuid

# redis-py as a plain install has it (the seed lists no hiredis): its own reply parser and command packer
sys.modules.setdefault("hiredis", None)

import redis  # noqa: E402
from flask import Flask, abort, jsonify, request, send_file  # noqa: E402

PIECE = 1024 * 1024  # base64 characters per list element


def create_app(redis_url: str, max_mib: int = 50) -> Flask:
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = max_mib * 1024 * 1024
    r = redis.Redis.from_url(redis_url)

    @app.post("/upload")
    def upload():
        part = request.files.get("file")
        if part is None:
            abort(400)
        data = part.read()
        encoded = base64.b64encode(data)
        pieces = [encoded[i : i + PIECE] for i in range(0, len(encoded), PIECE)] or [b""]
        file_id = uuid.uuid4().hex
        with r.pipeline() as pipe:
            pipe.rpush(f"file:{file_id}:chunks", *pieces)
            pipe.hset(
                f"file:{file_id}",
                mapping={"name": part.filename or "upload", "size": len(data), "mime_type": part.mimetype or "application/octet-stream"},
            )
            pipe.execute()
        return jsonify(id=file_id, size=len(data)), 201

    @app.get("/files/<file_id>")
    def download(file_id):
        meta = r.hgetall(f"file:{file_id}")
        if not meta:
            abort(404)
        data = base64.b64decode(b"".join(r.lrange(f"file:{file_id}:chunks", 0, -1)))
        return send_file(io.BytesIO(data), mimetype=meta[b"mime_type"].decode(), as_attachment=True, download_name=meta[b"name"].decode())

    @app.delete("/files/<file_id>")
    def delete(file_id):
        r.delete(f"file:{file_id}", f"file:{file_id}:chunks")
        return "", 204

    @app.get("/readyz")
    def ready():
        return jsonify(status="ok")

    return app


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--redis", required=True)
    p.add_argument("--max-mib", type=int, default=50)
    args = p.parse_args()
    create_app(args.redis, args.max_mib).run(host="127.0.0.1", port=args.port, threaded=True)


if __name__ == "__main__":
    main()
