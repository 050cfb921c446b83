"""Issue 9, fault 4: a connection cut half-way through a chunk.

A loopback proxy (``helpers.CutProxy``) forwards a request's head and its first
N body bytes to a real gunicorn files process, then drops both sides -- with a
FIN to the server (it reads a body that ends short) or a reset (its reads
fail).  The process runs one worker with one thread, so a request sent after
the cut is served only once the cut request is over: Redis is read after the
server finished with it.

* ``PUT /uploads/<id>/chunks/<i>`` and ``POST /upload_chunk`` (multipart, raw
  body, base64 JSON; a later chunk and an upload's first): no byte of a cut
  chunk is ever stored -- the chunk is absent from Redis and the status shows it
  missing, no chunk is left on its way in, the quota is as before -- and the
  same chunk sent again completes a byte-identical file.
* tus ``PATCH``: tus lets a server keep the prefix it received, and ours does
  (``tus.engine``: without ``Upload-Checksum`` each chunk goes in as it fills,
  and a body that ends short stores what arrived) -- so the offset ``HEAD``
  reports is exactly the bytes stored, which are exactly the first bytes sent,
  and resuming from it completes a byte-identical file.  After a FIN every
  byte that reached the server is kept; after a reset the 64 KiB piece the
  server was reading is lost with the connection.  With ``Upload-Checksum``
  the body cannot be verified, so nothing is kept.

A client's cut connection is the client's doing: the server answers it (when
it can still answer) with a 400, whatever the body's form, and never logs it
as an internal error.  (gunicorn ends a cut body quietly, like a whole one:
without ``error_handlers.refuse_short_bodies`` a raw seed chunk cut short was
stored short, and a multipart one was reported as missing fields, a 422.)
"""

from __future__ import annotations

import base64
import json
import os

import pytest
import requests

from redfile_dev.testing import ServiceProcess, auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

from .helpers import (
    OCTET,
    CutProxy,
    assert_file_checksums,
    chunk_key,
    chunk_keys_of,
    error_code,
    part_record,
    sha256,
    staging_keys,
    stored_parts,
)

CHUNK = 64 * 1024
TUS = {"Tus-Resumable": "1.0.0"}
TUS_OCTET = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture(scope="module")
def files(redis_server, tmp_path_factory):
    """One files process for the module: one worker, one thread (see the module docstring)."""
    proc = ServiceProcess(
        "files",
        redis_server.url,
        tmp_path_factory.mktemp("files-cut"),
        MAX_CHUNK_BYTES=str(CHUNK),
        WEB_CONCURRENCY="1",
        GUNICORN_THREADS="1",
    )
    try:
        proc.wait_ready()
        yield proc
    finally:
        proc.stop()


@pytest.fixture
def alice(redis_url, redis_client):
    return auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice"))


@pytest.fixture
def server_log(files):
    """``new()``: the service's log lines written since the test began."""
    start = files.log_path.stat().st_size

    class Log:
        def new(self) -> str:
            with open(files.log_path, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")

    return Log()


def cut(files, body_bytes: int, mode: str, method: str, path: str, **kwargs) -> CutProxy:
    """Send one request through a proxy that cuts it after ``body_bytes`` body bytes; returns once the server is done with it."""
    proxy = CutProxy(files.port, body_bytes, mode)
    with pytest.raises(requests.ConnectionError):
        requests.request(method, proxy.url + path, timeout=15, **kwargs)
    proxy.wait()
    # one worker thread: this answer comes only after the cut request was handled
    assert requests.get(f"{files.url}/healthz", timeout=15).status_code == 200
    return proxy


def assert_answered_as_client_error(proxy: CutProxy, server_log) -> None:
    if proxy.mode == "fin":  # the server could still answer: a 400 in the one error shape, never a 2xx
        resp = proxy.reply_response()
        assert resp is not None and resp.status_code == 400 and error_code(resp) == "bad_request", proxy.reply[:300]
    assert "unhandled_exception" not in server_log.new(), server_log.new()[-3000:]


def quota(files, headers) -> dict:
    return requests.get(f"{files.url}/quota", headers=headers, timeout=10).json()


MODES = ["fin", "rst"]


# -- upload sessions -----------------------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_bytes", [0, 1, CHUNK // 2, CHUNK - 1])
def test_session_chunk_cut_is_never_stored(files, alice, redis_client, server_log, mode, body_bytes):
    data = os.urandom(2 * CHUNK + 500)
    up = requests.post(
        f"{files.url}/uploads", headers=alice, json={"name": "s.bin", "total_size": len(data), "chunk_size": CHUNK}, timeout=10
    ).json()
    piece = lambda i: data[i * CHUNK : (i + 1) * CHUNK]  # noqa: E731
    assert (
        requests.put(f"{files.url}/uploads/{up['id']}/chunks/0", headers={**alice, **OCTET}, data=piece(0), timeout=10).status_code == 201
    )
    before = quota(files, alice)

    proxy = cut(files, body_bytes, mode, "PUT", f"/uploads/{up['id']}/chunks/1", headers={**alice, **OCTET}, data=piece(1))

    assert_answered_as_client_error(proxy, server_log)
    assert set(stored_parts(redis_client, up["id"])) == {0}
    assert chunk_keys_of(redis_client, up["id"], 1) == [] and staging_keys(redis_client) == []
    status = requests.get(f"{files.url}/uploads/{up['id']}", headers=alice, timeout=10).json()
    assert status["missing"] == [1, 2] and status["received_bytes"] == CHUNK
    assert quota(files, alice) == before
    for i in (1, 2):
        assert (
            requests.put(f"{files.url}/uploads/{up['id']}/chunks/{i}", headers={**alice, **OCTET}, data=piece(i), timeout=10).status_code
            == 201
        )
    done = requests.post(f"{files.url}/uploads/{up['id']}/complete", headers=alice, timeout=10)
    assert done.status_code == 201, done.text
    # the session asked for no SHA-256: the file's checksums are its CRC32C and BLAKE3 composite, of exactly these bytes
    assert_file_checksums(done.json(), data, CHUNK, with_sha256=False)
    assert requests.get(f"{files.url}/files/{up['id']}", headers=alice, timeout=10).content == data


# -- the seed's /upload_chunk, in its three body forms --------------------------------
def seed_request(form: str, piece: bytes, index: int, total: int, file_id: str | None) -> tuple[dict, int, int]:
    """requests kwargs for one /upload_chunk, and where the chunk (as encoded) starts and ends in the body."""
    fields = {"chunk_index": str(index), "total_chunks": str(total), **({"file_id": file_id} if file_id else {})}
    if form == "raw":
        return {"params": fields, "data": piece, "headers": OCTET}, 0, len(piece)
    if form == "json":
        encoded = base64.b64encode(piece)
        body = json.dumps({**fields, "chunk_data": encoded.decode()}).encode()
        start = body.index(encoded)
        return {"data": body, "headers": {"Content-Type": "application/json"}}, start, start + len(encoded)
    prepared = requests.Request("POST", "http://x/", data=fields, files={"chunk_data": ("c.bin", piece)}).prepare()
    assert isinstance(prepared.body, bytes)  # a multipart body is encoded to bytes
    start = prepared.body.index(piece)
    return {"data": prepared.body, "headers": {"Content-Type": prepared.headers["Content-Type"]}}, start, start + len(piece)


def seed_post(files, headers, form, piece, index, total, file_id=None) -> requests.Response:
    kwargs, _, _ = seed_request(form, piece, index, total, file_id)
    return requests.post(f"{files.url}/upload_chunk", **{**kwargs, "headers": {**headers, **kwargs["headers"]}}, timeout=10)


# where to cut, as a function of (where the chunk's bytes start, where they end, the body's length)
CUTS = {
    "before the chunk": lambda start, end, length: start // 2,
    "half the chunk": lambda start, end, length: (start + end) // 2,
    # every byte of the chunk, but not what says it ended (a multipart boundary, the JSON's close, the last raw byte)
    "just after the chunk": lambda start, end, length: min(end + 2, length - 1),
}


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("where", list(CUTS))
@pytest.mark.parametrize("form", ["multipart", "raw", "json"])
def test_seed_chunk_cut_is_never_stored(files, alice, redis_client, server_log, form, where, mode):
    data = os.urandom(2 * CHUNK)
    first = seed_post(files, alice, form, data[:CHUNK], 0, 2)
    assert first.status_code == 201, first.text
    file_id = first.json()["file_id"]
    before = quota(files, alice)
    kwargs, start, end = seed_request(form, data[CHUNK:], 1, 2, file_id)
    body_bytes = CUTS[where](start, end, len(kwargs["data"]))

    proxy = cut(files, body_bytes, mode, "POST", "/upload_chunk", **{**kwargs, "headers": {**alice, **kwargs["headers"]}})

    assert_answered_as_client_error(proxy, server_log)
    assert set(stored_parts(redis_client, file_id)) == {0}, f"a cut chunk was stored: {stored_parts(redis_client, file_id)}"
    assert chunk_keys_of(redis_client, file_id, 1) == [] and staging_keys(redis_client) == []
    status = requests.get(f"{files.url}/uploads/{file_id}", headers=alice, timeout=10).json()
    assert status["missing"] == [1] and status["received_bytes"] == CHUNK
    assert quota(files, alice) == before
    again = seed_post(files, alice, form, data[CHUNK:], 1, 2, file_id)
    assert again.status_code == 200 and again.json()["received_bytes"] == len(data), again.text  # 200: not a new upload
    done = requests.post(
        f"{files.url}/upload_complete", headers=alice, json={"file_id": file_id, "name": "seed.bin", "total_size": len(data)}, timeout=10
    )
    assert done.status_code == 201, done.text
    assert requests.get(f"{files.url}/files/{file_id}", headers=alice, timeout=10).content == data


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("form", ["multipart", "raw", "json"])
def test_seed_first_chunk_cut_leaves_no_upload(files, alice, redis_client, server_log, form, mode):
    """Cut before the client learnt a file_id: no upload, no reservation, nothing the client could never find again."""
    piece = os.urandom(CHUNK)
    kwargs, start, end = seed_request(form, piece, 0, 3, None)

    proxy = cut(files, (start + end) // 2, mode, "POST", "/upload_chunk", **{**kwargs, "headers": {**alice, **kwargs["headers"]}})

    assert_answered_as_client_error(proxy, server_log)
    assert list(redis_client.scan_iter(match="files:{*}:upload")) == [] and staging_keys(redis_client) == []
    assert redis_client.hlen("files:{u:alice}:held") == 0 and redis_client.zcard("files:{all}:uploads") == 0
    assert quota(files, alice)["reserved_bytes"] == 0


# -- tus PATCH ---------------------------------------------------------------------------
def tus_create(files, headers, length: int) -> str:
    resp = requests.post(f"{files.url}/tus/", headers={**headers, **TUS, "Upload-Length": str(length)}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.headers["Location"].rsplit("/", 1)[-1]


def tus_offset(files, headers, upload_id: str) -> int:
    resp = requests.head(f"{files.url}/tus/{upload_id}", headers={**headers, **TUS}, timeout=10)
    assert resp.status_code == 200
    return int(resp.headers["Upload-Offset"])


def stored_prefix(r, upload_id: str) -> bytes:
    """The upload's stored chunks, in order, checked against their part records (no encryption here)."""
    parts = stored_parts(r, upload_id)
    assert sorted(parts) == list(range(len(parts))), parts
    out = b""
    for i in range(len(parts)):
        value = r.get(chunk_key(r, upload_id, i))
        assert value is not None and parts[i] == part_record(value), i
        out += value
    return out


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("body_bytes", [1, CHUNK, CHUNK + CHUNK // 2, 3 * CHUNK - 1])
def test_tus_patch_cut_keeps_exactly_the_prefix_it_received(files, alice, redis_client, server_log, mode, body_bytes):
    data = os.urandom(3 * CHUNK + CHUNK // 2)
    upload_id = tus_create(files, alice, len(data))
    before = quota(files, alice)

    proxy = cut(
        files, body_bytes, mode, "PATCH", f"/tus/{upload_id}", headers={**alice, **TUS, **TUS_OCTET, "Upload-Offset": "0"}, data=data
    )

    assert_answered_as_client_error(proxy, server_log)
    offset = tus_offset(files, alice, upload_id)
    kept = stored_prefix(redis_client, upload_id)
    # what HEAD reports is exactly what is stored, and what is stored is exactly the bytes sent first
    assert len(kept) == offset and kept == data[:offset]
    assert int(redis_client.hget(f"files:{{{upload_id}}}:upload", "received_bytes")) == offset
    if mode == "fin":
        assert offset == body_bytes  # every byte that reached the server was kept
    else:
        # a reset makes the server's read fail: the piece it was in the middle of (tus reads 64 KiB at a
        # time) is lost with the connection, what came before is kept
        assert offset <= body_bytes
    assert staging_keys(redis_client) == [] and quota(files, alice) == before
    resumed = requests.patch(
        f"{files.url}/tus/{upload_id}", headers={**alice, **TUS, **TUS_OCTET, "Upload-Offset": str(offset)}, data=data[offset:], timeout=10
    )
    assert resumed.status_code == 204 and int(resumed.headers["Upload-Offset"]) == len(data)
    assert requests.get(f"{files.url}/files/{upload_id}", headers=alice, timeout=10).content == data


@pytest.mark.parametrize("mode", MODES)
def test_tus_patch_with_checksum_cut_keeps_nothing(files, alice, redis_client, server_log, mode):
    data = os.urandom(2 * CHUNK + 10)
    upload_id = tus_create(files, alice, len(data))
    checksum = "sha256 " + base64.b64encode(bytes.fromhex(sha256(data))).decode()
    headers = {**alice, **TUS, **TUS_OCTET, "Upload-Offset": "0", "Upload-Checksum": checksum}

    proxy = cut(files, CHUNK + CHUNK // 2, mode, "PATCH", f"/tus/{upload_id}", headers=headers, data=data)

    assert_answered_as_client_error(proxy, server_log)
    assert tus_offset(files, alice, upload_id) == 0 and stored_parts(redis_client, upload_id) == {}
    assert staging_keys(redis_client) == []  # the staged chunks were discarded
    resent = requests.patch(f"{files.url}/tus/{upload_id}", headers=headers, data=data, timeout=10)
    assert resent.status_code == 204, resent.text
    assert requests.get(f"{files.url}/files/{upload_id}", headers=alice, timeout=10).content == data
