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
docs/performance.md quotes its output under "Upload against the seed".
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one_request(port: int, head: bytes, parts: list) -> tuple[float, float, bytes, bytes]:
    """(seconds to send, seconds from the last byte sent to the answer's head, the head, the body) of one request
    on a new connection (``Connection: close``: the body is what comes until the server closes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        started = time.perf_counter()
        sock.sendall(head)
        for part in parts:
            sock.sendall(part)
        sent = time.perf_counter()
        answer = b""
        while b"\r\n\r\n" not in answer:
            got = sock.recv(65536)
            if not got:
                raise RuntimeError(f"connection closed before an answer: {answer[:200]!r}")
            answer += got
        answered = time.perf_counter()
        while got := sock.recv(65536):
            answer += got
    if answer.split(b" ", 2)[1] != b"201":
        raise RuntimeError(f"upload answered {answer[:300]!r}")
    head, _, body = answer.partition(b"\r\n\r\n")
    return sent - started, answered - sent, head, body


def header(head: bytes, name: bytes) -> str:
    for line in head.split(b"\r\n"):
        key, _, value = line.partition(b":")
        if key.strip().lower() == name:
            return value.strip().decode()
    raise KeyError(name)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--size-mib", type=int, default=48, help="the file (the stand-in refuses more than 50 MiB)")
    parser.add_argument("--repeat", type=int, default=5, help="uploads in a row per round (CPU time is counted in 10 ms ticks)")
    args = parser.parse_args()
    sys.path.insert(0, str(HERE))
    import redis

    from measure import MIB, Payload, bare_upload, redfile_delete, redfile_upload, seed_buffer, seed_delete
    from procs import Processes, cpu_seconds

    from redfile_common.dev.redis_server import free_port
    from redfile_common.settings import ServiceSettings
    from redfile_common.testing import test_env, user_token

    chunk = 8 * MIB - 4096  # the default chunk size (run.DEFAULT_CHUNK)
    with tempfile.TemporaryDirectory() as tmp:
        procs = Processes(Path(tmp), workers=2, threads=4)
        try:
            files = procs.gunicorn("files", "redfile_files:create_app()", service="files", ready="/readyz")
            bare = procs.gunicorn("bare", "bare_flask:create_app()", service="bare", ready="/readyz", pythonpath=str(HERE / "apps"))
            port = free_port()
            seed = procs.single("seed", [str(HERE / "apps" / "seed_standin.py"), "--port", str(port), "--redis", procs.redis_url, "--max-mib", "50"],
                                ready="/readyz", port=port)  # fmt: skip
            settings = ServiceSettings(**{k.lower(): v for k, v in test_env(procs.redis_url).items()})
            token = user_token(settings, redis.Redis.from_url(procs.redis_url), "bench")
            payload = Payload(seed_buffer(chunk), args.size_mib * MIB, chunk)
            parts = [payload.piece(i) for i in range(payload.count)]
            redis_pid = procs.redis.proc.pid

            def tus():
                head = (f"POST /tus/ HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\nTus-Resumable: 1.0.0\r\n"
                        f"Upload-Length: {payload.size}\r\nUpload-Metadata: filename {base64.b64encode(b'bench.bin').decode()}\r\n"
                        f"Content-Type: application/offset+octet-stream\r\nContent-Length: {payload.size}\r\nConnection: close\r\n\r\n")  # fmt: skip
                send, tail, answer, _ = one_request(files.port, head.encode(), parts)
                file_id = header(answer, b"location").rstrip("/").rsplit("/", 1)[-1]
                return (send, tail), lambda: redfile_delete(files.port, token, file_id)

            def seed_post():
                boundary = "bench" + os.urandom(8).hex()
                first = (f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
                         "Content-Type: application/octet-stream\r\n\r\n").encode()  # fmt: skip
                last = f"\r\n--{boundary}--\r\n".encode()
                head = (f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: multipart/form-data; boundary={boundary}\r\n"
                        f"Content-Length: {payload.size + len(first) + len(last)}\r\nConnection: close\r\n\r\n")  # fmt: skip
                send, tail, _, body = one_request(seed.port, head.encode(), [first, *parts, last])
                return (send, tail), lambda: seed_delete(seed.port, json.loads(body)["id"])

            def chunk_api():
                up = redfile_upload(files.port, token, payload)
                return None, lambda: redfile_delete(files.port, token, up.file_id)

            def sink():
                bare_upload(bare.port, payload)
                return None, None

            ways = {"tus, one request": (tus, files), "chunk API": (chunk_api, files), "seed stand-in": (seed_post, seed), "bare /sink": (sink, bare)}
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
