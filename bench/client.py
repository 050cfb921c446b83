"""The benchmark's clients: a minimal keep-alive HTTP/1.1 client, and a load generator for small requests.

The client sends a body with one ``sendall`` of the caller's buffer and reads a
response body into one reusable buffer with ``recv_into`` (counting it, or
keeping it when asked), so it costs about what redis-py's own socket code
costs: on a 2-core machine every cycle the client spends is taken from the
server it measures.  It talks to 127.0.0.1 only.

The load generator is ``wrk`` when it is on PATH (Debian: ``apt-get install
wrk``), else a few Python processes running the same client in a loop; both
stop after a fixed duration.
"""

from __future__ import annotations

import multiprocessing
import re
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass

BUF = 1024 * 1024


class HttpError(RuntimeError):
    pass


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes  # empty when the body was only counted
    length: int


class Http:
    """One keep-alive connection to 127.0.0.1:``port``; reopened when idle past gunicorn's keep-alive (5 s)."""

    IDLE = 3.0

    def __init__(self, port: int, timeout: float = 300.0) -> None:
        self.port = port
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = bytearray(BUF)
        self.view = memoryview(self.buf)
        self.rest = b""  # bytes read past the end of the last response
        self.used = 0.0
        self.sent = 0.0  # perf_counter() when the last request's last byte went out

    def _connect(self) -> socket.socket:
        if self.sock is not None and time.monotonic() - self.used > self.IDLE:
            self.close()
        if self.sock is None:
            self.sock = socket.create_connection(("127.0.0.1", self.port), timeout=self.timeout)
            self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.rest = b""
        return self.sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def request(
        self, method: str, path: str, *, headers: dict | None = None, body=None, keep: bool = True, parts: list | None = None
    ) -> Reply:
        """Send one request; ``body`` (bytes-like) or ``parts`` (several buffers, sent one after another)."""
        sock = self._connect()
        pieces = parts if parts is not None else ([body] if body is not None else [])
        length = sum(len(p) for p in pieces)
        lines = [f"{method} {path} HTTP/1.1", "Host: 127.0.0.1", f"Content-Length: {length}"]
        lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
            for piece in pieces:
                sock.sendall(piece)
            self.sent = time.perf_counter()
            reply = self._response(sock, keep, method == "HEAD")
            self.used = time.monotonic()
            return reply
        except (OSError, HttpError):
            self.close()
            raise

    def _recv(self, sock: socket.socket) -> bytes:
        if self.rest:
            data, self.rest = self.rest, b""
            return data
        n = sock.recv_into(self.view)
        if not n:
            raise HttpError("connection closed")
        return bytes(self.view[:n])

    def _response(self, sock: socket.socket, keep: bool, head: bool) -> Reply:
        data = b""
        while b"\r\n\r\n" not in data:
            if len(data) > 65536:
                raise HttpError("response head too large")
            data += self._recv(sock)
        head_bytes, _, rest = data.partition(b"\r\n\r\n")
        lines = head_bytes.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        if head or status in (204, 304):
            self.rest = rest
            return Reply(status, headers, b"", 0)
        if "content-length" in headers:
            return self._sized(sock, int(headers["content-length"]), rest, status, headers, keep)
        if headers.get("transfer-encoding", "").lower() == "chunked":
            return self._chunked(sock, rest, status, headers, keep)
        body = bytearray(rest)  # no length: the body ends with the connection
        while n := sock.recv_into(self.view):
            body += self.view[:n] if keep else b""
        self.close()
        return Reply(status, headers, bytes(body), len(body))

    def _sized(self, sock, length: int, rest: bytes, status: int, headers: dict, keep: bool) -> Reply:
        got = min(len(rest), length)
        kept = [rest[:got]] if keep else []
        self.rest = rest[length:]
        view = self.view
        while got < length:
            n = sock.recv_into(view, min(BUF, length - got))
            if not n:
                raise HttpError(f"body ended after {got} of {length} bytes")
            if keep:
                kept.append(bytes(view[:n]))
            got += n
        return Reply(status, headers, b"".join(kept), got)

    def _chunked(self, sock, rest: bytes, status: int, headers: dict, keep: bool) -> Reply:
        data, kept, total = rest, [], 0
        while True:
            while b"\r\n" not in data:
                data += self._recv(sock)
            size_line, _, data = data.partition(b"\r\n")
            size = int(size_line.split(b";")[0], 16)
            while len(data) < size + 2:
                data += self._recv(sock)
            if keep:
                kept.append(data[:size])
            total += size
            data = data[size + 2 :]
            if size == 0:
                self.rest = data
                return Reply(status, headers, b"".join(kept), total)


def expect(reply: Reply, *statuses: int) -> Reply:
    if reply.status not in statuses:
        raise HttpError(f"HTTP {reply.status}: {reply.body[:300]!r}")
    return reply


# -- small requests under load -------------------------------------------------------------------


@dataclass
class Load:
    tool: str
    requests: int
    seconds: float
    errors: int
    p50_ms: float | None
    p99_ms: float | None

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_wrk(text: str) -> tuple[int, float, int, float | None, float | None]:
    """(requests, seconds, errors, p50 ms, p99 ms) from ``wrk --latency`` output."""
    m = re.search(r"(\d+) requests in ([\d.]+)(us|ms|s|m)\b", text)
    if not m:
        raise ValueError(f"no request count in wrk output:\n{text}")
    seconds = float(m.group(2)) * {"us": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0}[m.group(3)]
    errors = 0
    if n := re.search(r"Non-2xx or 3xx responses: (\d+)", text):
        errors += int(n.group(1))
    if s := re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text):
        errors += sum(int(x) for x in s.groups())

    def pct(p: str) -> float | None:
        q = re.search(rf"^\s+{p}%\s+([\d.]+)(us|ms|s)\s*$", text, re.M)
        return float(q.group(1)) * _UNITS[q.group(2)] if q else None

    return int(m.group(1)), seconds, errors, pct("50"), pct("99")


def _python_loop(port: int, path: str, headers: dict, seconds: float, queue) -> None:
    http = Http(port, timeout=10)
    latencies, errors = [], 0
    end = time.monotonic() + seconds
    while (t0 := time.monotonic()) < end:
        try:
            if http.request("GET", path, headers=headers).status != 200:
                errors += 1
        except (OSError, HttpError):
            errors += 1
        latencies.append(time.monotonic() - t0)
    http.close()
    queue.put((len(latencies), errors, latencies[:: max(1, len(latencies) // 2000)]))


def python_load(port: int, path: str, headers: dict, seconds: float, connections: int) -> Load:
    """``connections`` processes, each one keep-alive connection in a closed loop, for ``seconds``."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    procs = [ctx.Process(target=_python_loop, args=(port, path, headers, seconds, queue)) for _ in range(connections)]
    started = time.monotonic()
    for p in procs:
        p.start()
    results = [queue.get(timeout=seconds + 60) for _ in procs]
    for p in procs:
        p.join(10)
    elapsed = time.monotonic() - started
    lat = sorted(x for r in results for x in r[2])
    pick = (lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000) if lat else (lambda q: None)
    return Load("python", sum(r[0] for r in results), elapsed, sum(r[1] for r in results), pick(0.5), pick(0.99))


def load(port: int, path: str, *, headers: dict | None = None, seconds: float = 5.0, connections: int = 8, tool: str = "auto") -> Load:
    """GET ``path`` as fast as ``connections`` keep-alive connections allow, for ``seconds``."""
    headers = headers or {}
    wrk = shutil.which("wrk") if tool in ("auto", "wrk") else None
    if tool == "wrk" and not wrk:
        raise RuntimeError("wrk is not on PATH (Debian: apt-get install wrk)")
    if not wrk:
        return python_load(port, path, headers, seconds, min(connections, 4))
    args = [wrk, "-t1", f"-c{connections}", f"-d{max(1, round(seconds))}s", "--latency", "--timeout", "10s"]
    for k, v in headers.items():
        args += ["-H", f"{k}: {v}"]
    with tempfile.TemporaryFile() as out:
        subprocess.run([*args, f"http://127.0.0.1:{port}{path}"], stdout=out, stderr=subprocess.STDOUT, check=True, timeout=seconds + 60)
        out.seek(0)
        text = out.read().decode()
    n, secs, errors, p50, p99 = parse_wrk(text)
    return Load("wrk", n, secs, errors, p50, p99)
