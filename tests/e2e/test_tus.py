"""tus end to end: the tuspy client from PyPI, through the gateway, over connections cut part-way.

A small TCP proxy on loopback sits between the client and the gateway and cuts
one connection after a number of bytes (both sides closed, as a dropped
network would): the upload then resumes from the offset the server kept, to a
byte-identical file.  Every wait is bounded.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import os
import socket
import threading
import time
from urllib.parse import urlsplit

import blake3
import google_crc32c
import pytest
import requests
from tusclient import client as tus_client
from tusclient.exceptions import TusCommunicationError, TusUploadFailed

pytestmark = pytest.mark.timeout(180)

CHUNK = 8 * 1024 * 1024 - 4 * 1024  # DEFAULT_CHUNK_BYTES: the chunk size of tus uploads under make run
TUS = {"Tus-Resumable": "1.0.0"}


class CuttingProxy:
    """Forwards loopback TCP to ``target``; the ``cut_nth`` connection to send more than ``cut_after`` bytes is cut there."""

    def __init__(self, target: str, *, cut_after: int, cut_nth: int = 1) -> None:
        url = urlsplit(target)
        self.target = (url.hostname, url.port)
        self.cut_after = cut_after
        self.cut_nth = cut_nth
        self.crossings = 0
        self.cut = threading.Event()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.base = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        self._stop.set()
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._server.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        try:
            upstream = socket.create_connection(self.target, timeout=30)
        except OSError:
            client.close()
            return
        client.settimeout(30)

        def close_both() -> None:
            for s in (client, upstream):
                with contextlib.suppress(OSError):  # the other side may have gone already
                    s.shutdown(socket.SHUT_RDWR)
                s.close()

        threading.Thread(target=self._pump, args=(upstream, client), daemon=True).start()
        sent, crossed = 0, False
        try:
            while data := client.recv(64 * 1024):
                if not crossed and sent + len(data) > self.cut_after:
                    crossed = True
                    with self._lock:
                        self.crossings += 1
                        cut = self.crossings == self.cut_nth
                    if cut:
                        upstream.sendall(data[: self.cut_after - sent])
                        self.cut.set()
                        close_both()
                        return
                upstream.sendall(data)
                sent += len(data)
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            close_both()

    @staticmethod
    def _pump(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(64 * 1024):
                dst.sendall(data)
        except OSError:
            pass


@pytest.fixture
def proxy(system):
    made: list[CuttingProxy] = []

    def make(**kw) -> CuttingProxy:
        made.append(CuttingProxy(system.base, **kw))
        return made[-1]

    yield make
    for p in made:
        p.close()


def auth(api) -> dict:
    return {"Authorization": f"Bearer {api.token}"}


def offset_of(url: str, api) -> int:
    resp = requests.head(url, headers={**auth(api), **TUS}, timeout=10)
    assert resp.status_code == 200, resp.status_code
    return int(resp.headers["Upload-Offset"])


def settled_offset(url: str, api, timeout: float = 10) -> int:
    """The offset once the server is done with the cut request (it stops changing)."""
    deadline = time.monotonic() + timeout
    last = offset_of(url, api)
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = offset_of(url, api)
        if now == last:
            return now
        last = now
    return last


def download(system, api, url: str) -> bytes:
    file_id = url.rstrip("/").rsplit("/", 1)[-1]
    resp = api.get(f"/files/{file_id}", timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.content


def test_options_through_the_gateway(system):
    resp = requests.options(f"{system.base}/tus/", timeout=10)
    assert resp.status_code == 204 and resp.headers["Tus-Version"] == "1.0.0"
    assert "creation" in resp.headers["Tus-Extension"].split(",")


def test_tuspy_retries_across_a_cut_connection_to_an_identical_file(system, make_user, proxy):
    _, _, api = make_user()
    data = os.urandom(2 * CHUNK + 12345)
    cutter = proxy(cut_after=5 * 1024 * 1024)  # inside the first chunk of the one big PATCH
    client = tus_client.TusClient(f"{cutter.base}/tus/", headers=auth(api))
    uploader = client.uploader(
        file_stream=io.BytesIO(data), metadata={"filename": "cut.bin", "filetype": "application/x-test"}, retries=5, retry_delay=1
    )
    uploader.upload()
    assert cutter.cut.is_set()
    assert uploader.offset == len(data) and uploader.url is not None
    assert download(system, api, uploader.url) == data
    meta = api.get(f"/files/{uploader.url.rsplit('/', 1)[-1]}/meta").json()
    assert (meta["name"], meta["mime_type"], meta["sha256"]) == ("cut.bin", "application/x-test", None)  # tus: no SHA-256
    pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
    composite = blake3.blake3(b"".join(blake3.blake3(p).digest() for p in pieces)).hexdigest() + f"-{len(pieces)}"
    assert (meta["crc32c"], meta["composite_blake3"]) == (f"{google_crc32c.value(data):08x}", composite)


def test_an_upload_cut_part_way_resumes_from_what_the_server_kept(system, make_user, proxy):
    _, _, api = make_user()
    data = os.urandom(CHUNK + 3_000_000)
    cut_at = 4 * 1024 * 1024
    cutter = proxy(cut_after=cut_at)
    first = tus_client.TusClient(f"{cutter.base}/tus/", headers=auth(api)).uploader(
        file_stream=io.BytesIO(data), metadata={"filename": "resumed.bin"}, retries=0
    )
    with pytest.raises((TusUploadFailed, TusCommunicationError)):
        first.upload()
    assert cutter.cut.is_set() and first.url is not None
    url = f"{system.base}{urlsplit(first.url).path}"
    kept = settled_offset(url, api)
    # what arrived before the cut is kept (less the request's own headers), not thrown away
    assert cut_at - 64 * 1024 <= kept < cut_at
    resumed = tus_client.TusClient(f"{system.base}/tus/", headers=auth(api)).uploader(
        file_stream=io.BytesIO(data), url=url, retries=3, retry_delay=1
    )
    assert resumed.offset == kept
    resumed.upload()
    assert download(system, api, url) == data


def test_with_checksums_a_cut_patch_is_discarded_whole_and_the_rest_resumes(system, make_user, proxy):
    _, _, api = make_user()
    data = os.urandom(2 * CHUNK + 777)
    cutter = proxy(cut_after=CHUNK // 2, cut_nth=2)  # the second PATCH (one chunk each) is cut half-way
    first = tus_client.TusClient(f"{cutter.base}/tus/", headers=auth(api)).uploader(
        file_stream=io.BytesIO(data), metadata={"filename": "summed.bin"}, chunk_size=CHUNK, upload_checksum=True, retries=0
    )
    with pytest.raises((TusUploadFailed, TusCommunicationError)):
        first.upload()
    assert first.url is not None
    url = f"{system.base}{urlsplit(first.url).path}"
    assert settled_offset(url, api) == CHUNK  # the first PATCH whole, nothing of the second
    resumed = tus_client.TusClient(f"{system.base}/tus/", headers=auth(api)).uploader(
        file_stream=io.BytesIO(data), url=url, chunk_size=CHUNK, upload_checksum=True, retries=3, retry_delay=1
    )
    resumed.upload()
    assert download(system, api, url) == data


def raw_patch(base: str, path: str, headers: dict, body: bytes, trailers: dict) -> tuple[int, dict]:
    """A chunked PATCH with trailer fields, by hand (no common Python client sends trailers)."""
    host, port = urlsplit(base).hostname, urlsplit(base).port
    lines = [f"PATCH {path} HTTP/1.1", f"Host: {host}:{port}", "Transfer-Encoding: chunked", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    payload = ("\r\n".join(lines) + "\r\n\r\n").encode()
    for i in range(0, len(body), 100_000):
        piece = body[i : i + 100_000]
        payload += b"%x\r\n%s\r\n" % (len(piece), piece)
    payload += b"0\r\n" + "".join(f"{k}: {v}\r\n" for k, v in trailers.items()).encode() + b"\r\n"
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(payload)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    head = raw.split(b"\r\n\r\n", 1)[0].decode("latin-1").split("\r\n")
    status = int(head[0].split()[1])
    return status, {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in head[1:])}


def test_a_checksum_trailer_goes_through_the_gateway(system, make_user):
    _, _, api = make_user()
    data = os.urandom(300_000)
    created = requests.post(f"{system.base}/tus/", headers={**auth(api), **TUS, "Upload-Length": str(len(data))}, timeout=10)
    path = created.headers["Location"]
    headers = {**auth(api), **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0", "Trailer": "Upload-Checksum"}
    wrong = base64.b64encode(hashlib.sha1(b"not it").digest()).decode()
    status, _ = raw_patch(system.base, path, headers, data, {"Upload-Checksum": f"sha1 {wrong}"})
    assert status == 460
    assert offset_of(f"{system.base}{path}", api) == 0
    right = base64.b64encode(hashlib.sha1(data).digest()).decode()
    status, got = raw_patch(system.base, path, headers, data, {"Upload-Checksum": f"sha1 {right}"})
    assert status == 204 and got["upload-offset"] == str(len(data))
    assert download(system, api, path) == data


def test_parallel_partial_uploads_joined_by_a_final_one(system, make_user):
    _, _, api = make_user()
    data = os.urandom(CHUNK + 5_000_000)
    halves = [data[: len(data) // 2], data[len(data) // 2 :]]
    urls: list[str] = [""] * 2

    def send(i: int) -> None:
        h = {**auth(api), **TUS}
        resp = requests.post(
            f"{system.base}/tus/", headers={**h, "Upload-Length": str(len(halves[i])), "Upload-Concat": "partial"}, timeout=10
        )
        urls[i] = resp.headers["Location"]
        patch = requests.patch(
            f"{system.base}{urls[i]}",
            headers={**h, "Upload-Offset": "0", "Content-Type": "application/offset+octet-stream"},
            data=halves[i],
            timeout=60,
        )
        assert patch.status_code == 204, patch.text

    threads = [threading.Thread(target=send, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert all(urls)
    name = base64.b64encode(b"joined.bin").decode()
    final = requests.post(
        f"{system.base}/tus/",
        headers={**auth(api), **TUS, "Upload-Concat": f"final;{urls[0]} {urls[1]}", "Upload-Metadata": f"filename {name}"},
        timeout=120,
    )
    assert final.status_code == 201, final.text
    assert final.headers["Upload-Offset"] == str(len(data))
    assert download(system, api, final.headers["Location"]) == data
