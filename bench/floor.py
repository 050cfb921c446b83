"""How much of the small-request gap the per-request extras and the Redis round trip make: the metadata read without them.

    .venv/bin/python bench/floor.py [--rounds 3] [--seconds 4]

Starts a private Redis, the bare Flask app, the files service, the files
service without its request log line, request metrics and body checks
(``apps/files_without_extras.py``), and that one with its token check's Redis
round trip replayed from memory (``apps/files_without_redis.py``), all under
the shared gunicorn configuration as ``make bench`` runs them; then,
alternating, loads the bare app's ``GET /tiny`` and each files app's
authenticated ``GET /files/<id>/meta`` (wrk when on PATH) and prints each one's
rate and its workers' CPU per request (the figure that does not depend on how
the load's connections landed on the workers).  docs/performance.md quotes its
output under "Small requests".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=4.0)
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import redis
    from client import load
    from measure import Payload, redfile_upload, seed_buffer
    from procs import Processes, cpu_seconds

    from redfile_common.settings import ServiceSettings
    from redfile_dev.testing import test_env, user_token

    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp), workers=2, threads=4)
        try:
            apps = {
                "bare": procs.gunicorn("bare", "bare_flask:create_app()", service="bare", ready="/readyz", pythonpath=str(HERE / "apps"))
            }
            apps["files"] = procs.gunicorn("files", "redfile_files:create_app()", service="files", ready="/readyz")
            apps["files, no extras"] = procs.gunicorn(
                "files-bare", "files_without_extras:create_app()", service="files", ready="/readyz", pythonpath=str(HERE / "apps")
            )
            apps["files, no Redis"] = procs.gunicorn(
                "files-no-redis", "files_without_redis:create_app()", service="files", ready="/readyz", pythonpath=str(HERE / "apps")
            )
            settings = ServiceSettings(**{k.lower(): v for k, v in test_env(procs.redis_url).items()})
            token = user_token(settings, redis.Redis.from_url(procs.redis_url), "bench")
            file_id = redfile_upload(apps["files"].port, token, Payload(seed_buffer(1000), 1000, 1000)).file_id
            targets = {"bare": ("/tiny", {})}
            for name in ("files", "files, no extras", "files, no Redis"):
                targets[name] = (f"/files/{file_id}/meta", {"Authorization": f"Bearer {token}"})
            for round_ in range(1, args.rounds + 1):
                for name, app in apps.items():
                    path, headers = targets[name]
                    before = cpu_seconds(app.workers())
                    result = load(app.port, path, headers=headers, seconds=args.seconds)
                    cpu_ms = (cpu_seconds(app.workers()) - before) * 1000 / max(1, result.requests)
                    errors = f", {result.errors} errors" if result.errors else ""
                    print(f"round {round_}  {name:17s} {result.rate:7.0f} req/s  {cpu_ms:5.2f} ms CPU per request{errors}", flush=True)
        finally:
            procs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
