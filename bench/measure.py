"""One measurement each: raw redis-py SET/GET, Redfile's upload and download, the bare app, the seed stand-in.

Every function moves the bytes once and returns seconds (and what it learnt);
the caller turns them into MiB/s and ratios.  Payloads come from one random
buffer of the largest chunk size, sent again and again, so the client spends
no time making data.
"""

from __future__ import annotations

import hashlib
import os
import threading
import time
from dataclasses import dataclass, field

import google_crc32c
import redis
from client import Http, HttpError, expect

MIB = 1024 * 1024


class Payload:
    """``size`` bytes in chunks of ``chunk``: slices of one random buffer (chunk i starts at a different offset)."""

    def __init__(self, seed_buffer: bytes, size: int, chunk: int) -> None:
        assert len(seed_buffer) >= 2 * chunk
        self.buf = memoryview(seed_buffer)
        self.size = size
        self.chunk = chunk
        self.count = max(1, -(-size // chunk))

    def piece(self, index: int) -> memoryview:
        n = min(self.chunk, self.size - index * self.chunk)
        start = (index * 4096) % (len(self.buf) - self.chunk)
        return self.buf[start : start + n]

    def pieces(self) -> list[memoryview]:
        return [self.piece(i) for i in range(self.count)]

    def sha256(self) -> str:
        digest = hashlib.sha256()
        for i in range(self.count):
            digest.update(self.piece(i))
        return digest.hexdigest()

    def crc32c(self) -> str:
        crc = google_crc32c.Checksum()
        for i in range(self.count):
            crc.update(bytes(self.piece(i)))
        return crc.digest().hex()


def seed_buffer(largest_chunk: int) -> bytes:
    return os.urandom(2 * largest_chunk + 4096 * 1024)


# -- the ceiling: redis-py against the same Redis ------------------------------------------------


def sha256_seconds(payload: Payload) -> float:
    """Seconds for hashlib to SHA-256 the whole payload in one thread, chunk by chunk: the one pass a
    single-stream upload cannot avoid (a file's SHA-256 is one sequential chain)."""
    import hashlib

    digest = hashlib.sha256()
    started = time.perf_counter()
    for i in range(payload.count):
        digest.update(payload.piece(i))
    return time.perf_counter() - started


def raw_set_get(client: redis.Redis, payload: Payload, piece: int = MIB) -> tuple[float, float, float]:
    """Seconds to SET every chunk of ``payload`` under its own key, to GET them all back one after another,
    and to read them back as Redfile does (GETRANGE pieces of ``piece`` bytes, pipelined per chunk)."""
    keys = [f"bench:raw:{i}" for i in range(payload.count)]
    try:
        started = time.perf_counter()
        for i, key in enumerate(keys):
            client.set(key, payload.piece(i))
        set_s = time.perf_counter() - started
        started = time.perf_counter()
        got = 0
        for key in keys:
            got += len(client.get(key))
        get_s = time.perf_counter() - started
        assert got == payload.size, (got, payload.size)
        started = time.perf_counter()
        got = 0
        for i, key in enumerate(keys):
            size = len(payload.piece(i))
            with client.pipeline(transaction=False) as pipe:
                for start in range(0, size, piece):
                    pipe.getrange(key, start, min(start + piece, size) - 1)
                got += len(b"".join(pipe.execute()))
        ranges_s = time.perf_counter() - started
        assert got == payload.size, (got, payload.size)
        return set_s, get_s, ranges_s
    finally:
        for i in range(0, len(keys), 256):
            client.delete(*keys[i : i + 256])


# -- Redfile: an upload session, one PUT per chunk ----------------------------------------------


@dataclass
class Upload:
    file_id: str
    seconds: float  # create + chunks + complete
    chunks_seconds: float
    complete_seconds: float
    checksum_ok: bool  # the file's CRC32C (and SHA-256, when asked for) is the payload's
    extra: dict = field(default_factory=dict)


def redfile_upload(
    port: int, token: str, payload: Payload, *, streams: int = 1, expected_crc: str | None = None, expected_sha: str | None = None
) -> Upload:
    """Create an upload session, PUT every chunk over ``streams`` keep-alive connections, complete it.

    ``expected_sha``: the upload asks for the file's SHA-256 (``checksum_algorithm``), which must be this."""
    auth = {"Authorization": f"Bearer {token}"}
    control = Http(port)
    started = time.perf_counter()
    ask = ',"checksum_algorithm":"sha256"' if expected_sha else ""
    body = f'{{"name":"bench.bin","total_size":{payload.size},"chunk_size":{payload.chunk}{ask}}}'.encode()
    up = expect(control.request("POST", "/uploads", headers={**auth, "Content-Type": "application/json"}, body=body), 201)
    upload_id = _json(up.body)["id"]
    headers = {**auth, "Content-Type": "application/octet-stream"}
    errors: list[BaseException] = []

    def send(lane: int) -> None:
        http = control if streams == 1 else Http(port)
        try:
            for index in range(lane, payload.count, streams):
                expect(http.request("PUT", f"/uploads/{upload_id}/chunks/{index}", headers=headers, body=payload.piece(index)), 201)
        except BaseException as exc:
            errors.append(exc)
        finally:
            if http is not control:
                http.close()

    chunks_started = time.perf_counter()
    if streams == 1:
        send(0)
    else:
        lanes = [threading.Thread(target=send, args=(k,)) for k in range(streams)]
        for t in lanes:
            t.start()
        for t in lanes:
            t.join()
    if errors:
        raise errors[0]
    completing = time.perf_counter()
    meta = _json(expect(control.request("POST", f"/uploads/{upload_id}/complete", headers=auth), 201).body)
    done = time.perf_counter()
    control.close()
    return Upload(
        upload_id,
        done - started,
        completing - chunks_started,
        done - completing,
        (expected_crc is None or meta["crc32c"] == expected_crc) and (expected_sha is None or meta["sha256"] == expected_sha),
    )


def tus_creation_headers(token: str, size: int) -> dict:
    """The headers of a tus creation-with-upload (``POST /tus/`` with all ``size`` bytes) of ``bench.bin``."""
    import base64

    return {
        "Authorization": f"Bearer {token}",
        "Tus-Resumable": "1.0.0",
        "Upload-Length": str(size),
        "Content-Type": "application/offset+octet-stream",
        "Upload-Metadata": "filename " + base64.b64encode(b"bench.bin").decode(),
    }


def redfile_tus_upload(port: int, token: str, payload: Payload, *, expected_crc: str | None = None) -> tuple[float, str, bool]:
    """Seconds to upload the whole file by tus in one request (creation-with-upload: ``POST /tus/`` with the
    bytes), as the seed's one multipart POST does; (seconds, file id, its CRC32C is the payload's)."""
    http = Http(port)
    started = time.perf_counter()
    reply = expect(http.request("POST", "/tus/", headers=tus_creation_headers(token, payload.size), parts=payload.pieces()), 201)
    seconds = time.perf_counter() - started
    if int(reply.headers["upload-offset"]) != payload.size:
        raise HttpError(f"tus: offset {reply.headers['upload-offset']} of {payload.size}")
    file_id = reply.headers["location"].rstrip("/").rsplit("/", 1)[-1]
    meta = _json(expect(http.request("GET", f"/files/{file_id}/meta", headers={"Authorization": f"Bearer {token}"}), 200).body)
    http.close()
    return seconds, file_id, expected_crc is None or meta["crc32c"] == expected_crc


def redfile_download(port: int, token: str, file_id: str, size: int, *, verify: bool = False) -> tuple[float, str | None]:
    """Seconds to GET the whole file (its bytes counted, or hashed when ``verify``)."""
    http = Http(port)
    started = time.perf_counter()
    reply = expect(http.request("GET", f"/files/{file_id}", headers={"Authorization": f"Bearer {token}"}, keep=verify), 200)
    seconds = time.perf_counter() - started
    http.close()
    if reply.length != size:
        raise HttpError(f"download: {reply.length} bytes of {size}")
    return seconds, hashlib.sha256(reply.body).hexdigest() if verify else None


def redfile_delete(port: int, token: str, file_id: str) -> None:
    http = Http(port)
    expect(http.request("DELETE", f"/files/{file_id}", headers={"Authorization": f"Bearer {token}"}), 204)
    http.close()


# -- the bare Flask app under the same gunicorn config -------------------------------------------


def bare_upload(port: int, payload: Payload) -> float:
    """Seconds to PUT every chunk to /sink, one after another on one connection."""
    http = Http(port)
    headers = {"Content-Type": "application/octet-stream"}
    started = time.perf_counter()
    for index in range(payload.count):
        expect(http.request("PUT", "/sink", headers=headers, body=payload.piece(index)), 201)
    seconds = time.perf_counter() - started
    http.close()
    return seconds


def bare_download(port: int, payload: Payload) -> float:
    http = Http(port)
    started = time.perf_counter()
    reply = expect(http.request("GET", f"/stream/{payload.size}?chunk={payload.chunk}", keep=False), 200)
    seconds = time.perf_counter() - started
    http.close()
    assert reply.length == payload.size
    return seconds


# -- the seed stand-in ---------------------------------------------------------------------------


def seed_form(payload: Payload) -> tuple[dict, list]:
    """(headers, body parts) of the seed's upload form: the whole file as its one multipart part ``file``."""
    boundary = "benchboundary" + os.urandom(8).hex()
    head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="bench.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    return {"Content-Type": f"multipart/form-data; boundary={boundary}"}, [head, *payload.pieces(), tail]


def seed_upload(port: int, payload: Payload) -> tuple[float, str | None, int]:
    """Seconds to upload the whole file in one multipart POST; (seconds, id or None when refused, status)."""
    headers, parts = seed_form(payload)
    http = Http(port)
    started = time.perf_counter()
    try:
        reply = http.request("POST", "/upload", headers=headers, parts=parts)
    except (OSError, HttpError):
        return time.perf_counter() - started, None, 0  # a refused upload may be cut off mid-body
    seconds = time.perf_counter() - started
    http.close()
    if reply.status != 201:
        return seconds, None, reply.status
    return seconds, _json(reply.body)["id"], 201


def seed_download(port: int, file_id: str, size: int) -> float:
    http = Http(port)
    started = time.perf_counter()
    reply = expect(http.request("GET", f"/files/{file_id}", keep=False), 200)
    seconds = time.perf_counter() - started
    http.close()
    assert reply.length == size, (reply.length, size)
    return seconds


def seed_delete(port: int, file_id: str) -> None:
    http = Http(port)
    http.request("DELETE", f"/files/{file_id}")
    http.close()


def _json(raw: bytes):
    import json

    return json.loads(raw)


# -- the Redis paths a chunk's bytes can take, each measured on its own ------------------------------

_SET_THROUGH_LUA = "redis.call('SET', KEYS[1], ARGV[1]) return 1"
_RENAME_IN_LUA = "redis.call('RENAME', KEYS[2], KEYS[1]) redis.call('EXPIRE', KEYS[1], 600) return 1"


def redis_paths(client: redis.Redis, python_parser: redis.Redis, payload: Payload) -> dict:
    """Milliseconds per chunk: a plain SET; the bytes passed to a Lua script as an argument (Redis copies them
    into a Lua string and out again); a SET to a staging key then a script that RENAMEs it (how the files
    service stores a chunk; a streamed chunk sends the two together); a GET with hiredis's reply parser and
    with redis-py's own."""
    through_lua = client.register_script(_SET_THROUGH_LUA)
    rename = client.register_script(_RENAME_IN_LUA)
    n = payload.count
    timings: dict[str, float] = {}

    def timed(name: str, fn) -> None:
        started = time.perf_counter()
        for i in range(n):
            fn(i)
        timings[name] = (time.perf_counter() - started) * 1000 / n

    try:
        timed("set_ms", lambda i: client.set(f"bench:p:{i}", payload.piece(i)))
        timed("lua_with_bytes_ms", lambda i: through_lua(keys=[f"bench:p:{i}"], args=[payload.piece(i)]))
        timed(
            "set_then_lua_rename_ms",
            lambda i: (client.set(f"bench:s:{i}", payload.piece(i), ex=60), rename(keys=[f"bench:p:{i}", f"bench:s:{i}"])),
        )
        timed("get_hiredis_ms", lambda i: client.get(f"bench:p:{i}"))
        timed("get_python_parser_ms", lambda i: python_parser.get(f"bench:p:{i}"))
    finally:
        client.delete(*[f"bench:p:{i}" for i in range(n)])
    timings["chunk_bytes"] = payload.chunk
    return timings
