"""Tools for the fault tests: a retrying upload client, a connection-cutting proxy, Redis look-ups.

Imported by the tests of this folder (not a conftest).  Everything here is
bounded in time: every loop has a deadline and every request a timeout.
"""

from __future__ import annotations

import hashlib
import socket
import struct
import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

import blake3
import google_crc32c
import requests

OCTET = {"Content-Type": "application/octet-stream"}
REQUEST_TIMEOUT = 15  # seconds, for every HTTP request a test makes


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def crc32c(data: bytes) -> str:
    """CRC32C of the bytes, 8 hex digits (a file's ``crc32c``)."""
    return f"{google_crc32c.value(data):08x}"


def composite_blake3(data: bytes, chunk: int) -> str:
    """A file's ``composite_blake3``, computed here from its bytes cut in chunks of ``chunk``:
    BLAKE3 of the chunks' concatenated raw BLAKE3 digests, hex, then ``-<number of chunks>``."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
    outer = blake3.blake3()
    for piece in pieces:
        outer.update(blake3.blake3(piece).digest())
    return f"{outer.hexdigest()}-{len(pieces)}"


def assert_file_checksums(meta: dict, data: bytes, chunk: int, *, with_sha256: bool) -> None:
    """A stored file's checksums are those of ``data`` (uploaded in chunks of ``chunk``): its CRC32C and BLAKE3
    composite always, its SHA-256 only when its upload declared or asked for one (else null)."""
    assert meta["size"] == len(data), meta
    assert meta["crc32c"] == crc32c(data), meta
    assert meta["composite_blake3"] == composite_blake3(data, chunk), meta
    assert meta["sha256"] == (sha256(data) if with_sha256 else None), meta


def wait_until(predicate: Callable[[], object], timeout: float, what: str, interval: float = 0.05):
    """Poll ``predicate`` until it returns something truthy (returned); AssertionError after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


def error_code(resp: requests.Response) -> str | None:
    """The ``error.code`` of the one JSON error shape; AssertionError if the body is not that shape."""
    assert resp.headers.get("Content-Type", "").startswith("application/json"), (resp.status_code, resp.headers, resp.text[:300])
    body = resp.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]["code"]


def upload_keys(r, upload_id: str) -> dict[str, bytes]:
    """Every key of one upload or file (its hash tag, and its chunks' ``<id>.<index>``), with its type: what a fault
    may have left behind."""
    found = list(r.scan_iter(match=f"files:{{{upload_id}}}:*", count=1000))
    found += r.scan_iter(match=f"files:{{{upload_id}.*}}:*", count=1000)
    return {k.decode(): r.type(k) for k in found}


def chunk_key(r, upload_id: str, index: int) -> str | None:
    """Where chunk ``index`` is stored, as its part record names it: ``files:{<id>.<index>}:c:<first 16 hex of its
    BLAKE3>``; None when no record does."""
    record = r.hget(f"files:{{{upload_id}}}:parts", index)
    return None if record is None else f"files:{{{upload_id}.{index}}}:c:{record.decode().rsplit(':', 1)[1][:16]}"


def chunk_keys_of(r, upload_id: str, index: int) -> list[str]:
    """Every chunk key (recorded or not) of index ``index``."""
    return [k.decode() for k in r.scan_iter(match=f"files:{{{upload_id}.{index}}}:c:*", count=1000)]


def staging_keys(r, upload_id: str | None = None) -> list[str]:
    """Chunks on their way in (``in:``) or staged by a tus PATCH (``s:``) that were never put in place."""
    tag = upload_id or "*"  # in the chunk's slot: files:{<id>.<index>}:in:... and :s:...
    found = [k.decode() for k in r.scan_iter(match=f"files:{{{tag}.*}}:in:*", count=1000)]
    found += [k.decode() for k in r.scan_iter(match=f"files:{{{tag}.*}}:s:*", count=1000)]
    return found


def stored_parts(r, upload_id: str) -> dict[int, str]:
    """index -> part record of every chunk the upload's part table lists ("size:crc32c:blake3")."""
    return {int(k): v.decode() for k, v in r.hgetall(f"files:{{{upload_id}}}:parts").items()}


def part_record(piece: bytes) -> str:
    """The part table's entry for a chunk of these bytes, as the files service writes it:
    "<size>:<crc32c hex>:<blake3 hex>" (the same bytes always make the same record)."""
    return f"{len(piece)}:{crc32c(piece)}:{blake3.blake3(piece).hexdigest()}"


class RetryingUploader:
    """A careful client of one upload session, as a real one would be written.

    It sends the chunks in parallel.  A connection error, a timeout or a 5xx is
    not an answer: the chunk counts as not sent, and once a round of sends is
    over the client asks the server what is missing (``GET /uploads/<id>``,
    itself retried) and sends exactly that, until nothing is missing; then it
    completes, and a complete whose answer was lost is recognised by the file's
    metadata.  Each backoff is short (at most 0.5 s, ignoring Retry-After's 5 s)
    to keep the tests fast; every loop stops at ``deadline`` (monotonic).

    Acknowledged chunks (a 200 or 201 naming the chunk's SHA-256) are recorded
    in ``acked``: index -> monotonic time of the answer.  ``pause()`` stops new
    requests and waits until none is in flight; ``resume()`` lets them go again.
    """

    def __init__(self, base: str, headers: dict, data: bytes, chunk: int, *, deadline: float, threads: int = 4) -> None:
        self.base = base
        self.headers = headers
        self.data = data
        self.chunk = chunk
        self.deadline = deadline
        self.threads = threads
        self.total = max(1, -(-len(data) // chunk))
        self.upload_id: str | None = None
        self.acked: dict[int, float] = {}
        self.connection_errors = 0
        self.server_errors: list[tuple[int, str | None, str | None]] = []  # (status, error code, Retry-After)
        self.statuses: Counter = Counter()
        self.rounds = 0
        self._lock = threading.Lock()
        self._gate = threading.Event()
        self._gate.set()
        self._in_flight = 0

    # -- the gate ------------------------------------------------------------------
    def _remaining(self) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"the upload did not finish before its deadline ({self.summary()})")
        return left

    def pause(self, timeout: float = 30) -> None:
        """No new request starts; returns once every request in flight has its answer (or error)."""
        with self._lock:
            self._gate.clear()
        wait_until(lambda: self._in_flight == 0, timeout, "the client's requests in flight to end", interval=0.01)

    def resume(self) -> None:
        self._gate.set()

    def _enter(self) -> None:
        while True:
            self._gate.wait(min(self._remaining(), 1.0))
            with self._lock:
                if self._gate.is_set():
                    self._in_flight += 1
                    return

    def _exit(self) -> None:
        with self._lock:
            self._in_flight -= 1

    # -- requests --------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs) -> requests.Response | None:
        """One request through the gate; None for a connection error or timeout (a killed worker may also cut an
        answer it had begun: ChunkedEncodingError); 5xx answers are recorded."""
        self._enter()
        try:
            headers = {**self.headers, **kwargs.pop("headers", {})}
            resp = requests.request(method, self.base + path, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs)
        except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
            with self._lock:
                self.connection_errors += 1
            return None
        finally:
            self._exit()
        with self._lock:
            self.statuses[resp.status_code] += 1
        if resp.status_code >= 500:
            code = error_code(resp)  # even a failure keeps the one JSON error shape
            with self._lock:
                self.server_errors.append((resp.status_code, code, resp.headers.get("Retry-After")))
        return resp

    def _backoff(self, attempt: int) -> None:
        time.sleep(min(0.05 * 2**attempt, 0.5, self._remaining()))

    def piece(self, index: int) -> bytes:
        return self.data[index * self.chunk : (index + 1) * self.chunk]

    def create(self, name: str = "fault.bin") -> str:
        body = {"name": name, "total_size": len(self.data), "chunk_size": self.chunk, "sha256": sha256(self.data)}
        for attempt in range(1000):
            resp = self.request("POST", "/uploads", json=body)
            if resp is not None and resp.status_code < 500:
                assert resp.status_code == 201, resp.text
                self.upload_id = resp.json()["id"]
                assert resp.json()["total_chunks"] == self.total
                return self.upload_id
            self._backoff(attempt)
        raise AssertionError("unreachable")

    def send(self, index: int) -> bool:
        piece = self.piece(index)
        resp = self.request(
            "PUT", f"/uploads/{self.upload_id}/chunks/{index}", data=piece, headers={**OCTET, "X-Checksum-SHA256": sha256(piece)}
        )
        if resp is None or resp.status_code >= 500:
            return False
        assert resp.status_code in (200, 201), f"chunk {index}: {resp.status_code} {resp.text}"
        receipt = resp.json()
        assert receipt["sha256"] == sha256(piece)  # computed because the client sent it, to verify
        assert receipt["crc32c"] == crc32c(piece) and receipt["blake3"] == blake3.blake3(piece).hexdigest(), receipt
        with self._lock:
            self.acked.setdefault(index, time.monotonic())
        return True

    def missing(self) -> list[int]:
        """What the server says is missing (the first 100), asked until it answers."""
        for attempt in range(1000):
            resp = self.request("GET", f"/uploads/{self.upload_id}")
            if resp is not None and resp.status_code < 500:
                assert resp.status_code == 200, resp.text
                status = resp.json()
                assert status["missing_count"] == self.total - status["received_chunks"], status
                return status["missing"]
            self._backoff(attempt)
        raise AssertionError("unreachable")

    def send_all(self, first_round: list[int] | None = None) -> None:
        """Rounds of parallel sends, each followed by the status, until nothing is missing."""
        todo = list(range(self.total)) if first_round is None else list(first_round)
        while True:
            self._remaining()
            self.rounds += 1
            with ThreadPoolExecutor(self.threads) as pool:
                list(pool.map(self.send, todo))  # re-raises an assertion of any send
            todo = self.missing()
            if not todo:
                return

    def complete(self) -> dict:
        for attempt in range(1000):
            resp = self.request("POST", f"/uploads/{self.upload_id}/complete")
            if resp is not None and resp.status_code == 201:
                return resp.json()
            if resp is not None and resp.status_code < 500:
                if resp.status_code == 409 and error_code(resp) == "upload_incomplete":
                    self.send_all(self.missing())  # a chunk went missing after all: send it again
                    continue
                # an earlier complete may have committed and lost its answer: the file is there
                meta = self.request("GET", f"/files/{self.upload_id}/meta")
                if meta is not None and meta.status_code == 200:
                    return meta.json()
                raise AssertionError(f"complete: {resp.status_code} {resp.text}")
            self._backoff(attempt)
        raise AssertionError("unreachable")

    def download(self) -> bytes:
        for attempt in range(1000):
            resp = self.request("GET", f"/files/{self.upload_id}")
            if resp is not None and resp.status_code < 500:
                assert resp.status_code == 200, resp.text
                return resp.content
            self._backoff(attempt)
        raise AssertionError("unreachable")

    def summary(self) -> str:
        return (
            f"acked {len(self.acked)}/{self.total}, rounds {self.rounds}, connection errors {self.connection_errors}, "
            f"statuses {dict(self.statuses)}, 5xx {Counter(self.server_errors)}"
        )


def half_sent_put(port: int, headers: dict, upload_id: str, index: int, piece: bytes) -> socket.socket:
    """A PUT of ``piece`` whose head and first half are sent; the rest never comes (until the socket is closed)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    head = (
        f"PUT /uploads/{upload_id}/chunks/{index} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {headers['Authorization']}\r\n"
        f"Content-Type: application/octet-stream\r\nContent-Length: {len(piece)}\r\n\r\n"
    )
    sock.sendall(head.encode() + piece[: len(piece) // 2])
    return sock


def answer_of(sock: socket.socket) -> bytes:
    """Whatever the server sends before the connection ends (b"" when it just died)."""
    received = b""
    try:
        while data := sock.recv(65536):
            received += data
    except ConnectionResetError:
        pass
    return received


def server_unread(server_port: int, peer_port: int) -> int | None:
    """Bytes the server has received but not yet read on its connection from ``peer_port`` (Linux /proc/net/tcp)."""
    with open("/proc/net/tcp") as table:
        for line in table.readlines()[1:]:
            fields = line.split()
            local, remote, queues = fields[1], fields[2], fields[4]
            if int(local.split(":")[1], 16) == server_port and int(remote.split(":")[1], 16) == peer_port:
                return int(queues.split(":")[1], 16)
    return None


class CutProxy:
    """A loopback TCP proxy that cuts one request part-way through its body.

    It accepts one connection, forwards the request's head (up to the blank
    line) and then its first ``body_bytes`` body bytes to ``upstream_port``,
    waits until the server has read them all (its socket's receive queue is
    empty), and then drops both sides:

    * ``mode="fin"``: it half-closes the server side (the server reads the end
      of its input: a body shorter than announced), keeps what the server
      answers in ``reply`` (bounded by a timeout), then closes both sockets;
    * ``mode="rst"``: it resets both connections at once (SO_LINGER 0), as a
      crashed middlebox or a vanished phone would; the server's reads fail.

    Nothing from the server reaches the client: to the client, the connection just breaks.
    """

    def __init__(self, upstream_port: int, body_bytes: int, mode: str = "fin", timeout: float = 10) -> None:
        assert mode in ("fin", "rst")
        self.upstream_port = upstream_port
        self.body_bytes = body_bytes
        self.mode = mode
        self.timeout = timeout
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(timeout)
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.forwarded_body = 0
        self.reply = b""
        self.error: BaseException | None = None
        self.done = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._serve()
        except BaseException as exc:
            self.error = exc
        finally:
            self.listener.close()
            self.done.set()

    def _serve(self) -> None:
        client, _ = self.listener.accept()
        upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=self.timeout)
        client.settimeout(self.timeout)
        try:
            head, limit = b"", None
            sent = 0  # bytes of the request forwarded
            while limit is None or sent < limit:
                data = client.recv(65536)
                if not data:
                    raise AssertionError("the client ended its request before the cut")
                if limit is None:
                    head += data
                    end = head.find(b"\r\n\r\n")
                    if end < 0:
                        continue
                    limit = end + 4 + self.body_bytes
                    data, head = head, b""
                take = data[: limit - sent]
                upstream.sendall(take)
                sent += len(take)
            self.forwarded_body = self.body_bytes
            # Cut once the server has read every byte forwarded, so its next read is the one that fails.
            local_port = upstream.getsockname()[1]
            wait_until(lambda: server_unread(self.upstream_port, local_port) == 0, self.timeout, "the server to read the bytes forwarded")
            if self.mode == "fin":
                upstream.shutdown(socket.SHUT_WR)
                upstream.settimeout(self.timeout)
                while chunk := upstream.recv(65536):
                    self.reply += chunk
        finally:
            for sock in (upstream, client):
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # close = RST
                sock.close()

    def wait(self) -> None:
        assert self.done.wait(self.timeout + 5), "the proxy did not finish"
        if self.error is not None:
            raise self.error

    def reply_response(self) -> requests.Response | None:
        """The server's answer to the cut request (``fin`` mode) as a ``requests`` response, or None if it said nothing."""
        if not self.reply:
            return None
        head, _, body = self.reply.partition(b"\r\n\r\n")
        status_line, *lines = head.decode("latin-1").split("\r\n")
        resp = requests.Response()
        resp.status_code = int(status_line.split(" ", 2)[1])
        resp.headers.update(dict(line.split(": ", 1) for line in lines))
        resp._content = body
        return resp
