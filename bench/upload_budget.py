"""Where a one-request upload's time and CPU go, against the seed stand-in's: the upload-vs-seed target's budget.

    .venv/bin/python bench/upload_budget.py [--rounds 7] [--repeat 5] [--size-mib 48]

Starts a private Redis, the files service and the bare Flask app under the
shared gunicorn configuration, and the seed stand-in, as ``make bench`` runs
them; then, alternating, uploads the same file by tus in one request
(``creation-with-upload``), by the chunk API, to the stand-in in one multipart
``POST``, and to the bare app's ``/sink`` (its chunks, HTTP only: no Redis).
For each, ``--repeat`` uploads in a row, it prints the rate and the cores each
process kept busy meanwhile (the server's workers, Redis, this client; from
``/proc``), and for the two one-request uploads how the time splits between
sending the body and waiting for the answer after the last byte went out (the
server still taking in what the sockets held, the last chunk's script, and the
completion).
docs/performance.md quotes its output under "Upload against the stand-in".
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_request(port: int, path: str, headers: dict, parts: list):
    """(seconds to send, seconds from the last byte sent to the whole answer, the answer) of one ``POST`` on a
    new connection."""
    from client import Http, expect

    http = Http(port)
    try:
        started = time.perf_counter()
        reply = expect(http.request("POST", path, headers=headers, parts=parts), 201)
        return http.sent - started, time.perf_counter() - http.sent, reply
    finally:
        http.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size-mib", type=int, default=48, help="the file (the stand-in refuses more than 50 MiB)")
    parser.add_argument("--repeat", type=int, default=5, help="uploads in a row per round (CPU time is counted in 10 ms ticks)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import redis
    from measure import MIB, Payload, bare_upload, redfile_delete, redfile_upload, seed_buffer, seed_delete, seed_form, tus_creation_headers
    from procs import Processes, cpu_seconds

    from redfile_common.settings import ServiceSettings
    from redfile_dev.redis_server import free_port
    from redfile_dev.testing import test_env, user_token

    chunk = 8 * MIB - 4096  # the default chunk size (run.DEFAULT_CHUNK)
    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp), workers=2, threads=4)
        try:
            files = procs.gunicorn("files", "redfile_files:create_app()", service="files", ready="/readyz")
            bare = procs.gunicorn("bare", "bare_flask:create_app()", service="bare", ready="/readyz", pythonpath=str(HERE / "apps"))
            port = free_port()
            seed = procs.single(
                "seed",
                [str(HERE / "apps" / "seed_standin.py"), "--port", str(port), "--redis", procs.redis_url, "--max-mib", "50"],
                ready="/readyz",
                port=port,
            )
            settings = ServiceSettings(**{k.lower(): v for k, v in test_env(procs.redis_url).items()})
            token = user_token(settings, redis.Redis.from_url(procs.redis_url), "bench")
            payload = Payload(seed_buffer(chunk), args.size_mib * MIB, chunk)
            parts = payload.pieces()
            redis_pid = procs.redis.proc.pid

            def tus():
                send, wait, reply = one_request(files.port, "/tus/", tus_creation_headers(token, payload.size), parts)
                file_id = reply.headers["location"].rstrip("/").rsplit("/", 1)[-1]
                return (send, wait), lambda: redfile_delete(files.port, token, file_id)

            def seed_post():
                headers, form = seed_form(payload)
                send, wait, reply = one_request(seed.port, "/upload", headers, form)
                return (send, wait), lambda: seed_delete(seed.port, json.loads(reply.body)["id"])

            def chunk_api():
                up = redfile_upload(files.port, token, payload)
                return None, lambda: redfile_delete(files.port, token, up.file_id)

            def sink():
                bare_upload(bare.port, payload)
                return None, None

            ways = {
                "tus, one request": (tus, files),
                "chunk API": (chunk_api, files),
                "seed stand-in": (seed_post, seed),
                "bare /sink": (sink, bare),
            }
            rows: dict[str, list[tuple]] = {name: [] for name in ways}
            for round_ in range(1, args.rounds + 1):
                for name, (upload, server) in ways.items():
                    pids = server.workers()
                    before = (cpu_seconds(pids), cpu_seconds([redis_pid]), time.process_time())
                    started = time.perf_counter()
                    done = [upload() for _ in range(args.repeat)]
                    wall = time.perf_counter() - started
                    after = (cpu_seconds(pids), cpu_seconds([redis_pid]), time.process_time())
                    for _, cleanup in done:
                        if cleanup:
                            cleanup()
                    cores = tuple((b - a) / wall for a, b in zip(before, after))
                    splits = [split for split, _ in done if split]
                    split = tuple(statistics.median(col) for col in zip(*splits)) if splits else (float("nan"), float("nan"))
                    rate = args.size_mib * args.repeat / wall
                    rows[name].append((rate, *cores, *split))
                    line = f"round {round_}  {name:17s} {rate:6.0f} MiB/s   cores: server {cores[0]:.2f}  Redis {cores[1]:.2f}  client {cores[2]:.2f}"
                    if splits:
                        line += f"   send {split[0] * 1000:5.1f} ms, then {split[1] * 1000:5.1f} ms to the answer"
                    print(line, flush=True)
            print(f"\nmedians of {args.rounds} rounds of {args.repeat} uploads of {args.size_mib} MiB:")
            for name, got in rows.items():
                rate, server, red, client, send, tail = (statistics.median(col) for col in zip(*got))
                total = server + red + client
                line = f"  {name:17s} {rate:6.0f} MiB/s   cores {total:.2f} (server {server:.2f}, Redis {red:.2f}, client {client:.2f}),  {total / rate * 1000:.2f} ms of CPU per MiB"
                if send == send:  # not NaN
                    line += f";  send {send * 1000:.1f} ms + {tail * 1000:.1f} ms to the answer"
                print(line)
            seed_rate = statistics.median(r[0] for r in rows["seed stand-in"])
            print(f"  5x the stand-in: {5 * seed_rate:.0f} MiB/s")
        finally:
            procs.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
