"""Tools for the failover tests: a client that times every request, the figures of one failover and what they
must stay within, files stored before it, an upload the kill meets, and a download cut by it and resumed.

Imported by the ``test_failover_*`` tests (not a conftest).  Every loop is bounded by a deadline and every
request by a timeout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import requests

from .helpers import REQUEST_TIMEOUT, RetryingUploader, error_code, sha256, wait_until

MIB = 1024 * 1024


@dataclass
class Exchange:
    """One request: when it left, when its answer (or its failure) came, its status (None: the connection broke)."""

    started: float
    ended: float
    status: int | None
    what: str  # method and path

    @property
    def failed(self) -> bool:
        return self.status is None or self.status >= 500


@dataclass
class Figures:
    """What a failover cost the clients, from the moment the primary was killed."""

    recovered_after: float  # seconds from the kill to the first 2xx of a request sent after it
    first_success: str  # that request
    writes_recovered_after: float | None  # the same for a request that stores something (None: none was sent)
    failed: int  # requests answered 5xx or cut after the kill
    failed_statuses: dict = field(default_factory=dict)  # status (None: connection broke) -> count
    worst_failure: float = 0.0  # seconds the slowest failed request took
    bytes_lost: int = 0  # acknowledged bytes the service later did not have

    def __str__(self) -> str:
        return (
            f"recovered after {self.recovered_after:.2f} s ({self.first_success}; a write: {self.writes_recovered_after}), {self.failed} requests failed {self.failed_statuses}, "
            f"worst failure answered in {self.worst_failure:.2f} s, {self.bytes_lost} acknowledged bytes lost"
        )


class Exchanges:
    """The requests of a test's clients, timed, from every thread."""

    def __init__(self) -> None:
        self.seen: list[Exchange] = []
        self._lock = threading.Lock()

    def add(self, started: float, status: int | None, what: str) -> None:
        with self._lock:
            self.seen.append(Exchange(started, time.monotonic(), status, what))

    def figures(self, killed_at: float, bytes_lost: int = 0) -> Figures:
        with self._lock:
            after = [e for e in self.seen if e.ended >= killed_at]
        recovered = [e for e in after if e.started >= killed_at and e.status is not None and 200 <= e.status < 300]
        assert recovered, "no request succeeded after the kill"
        first = min(recovered, key=lambda e: e.ended)
        writes = [e.ended - killed_at for e in recovered if not e.what.startswith(("GET", "HEAD"))]
        failures = [e for e in after if e.failed]
        statuses: dict = {}
        for e in failures:
            statuses[e.status] = statuses.get(e.status, 0) + 1
        return Figures(
            recovered_after=first.ended - killed_at,
            first_success=first.what,
            writes_recovered_after=round(min(writes), 2) if writes else None,
            failed=len(failures),
            failed_statuses=statuses,
            worst_failure=max((e.ended - e.started for e in failures), default=0.0),
            bytes_lost=bytes_lost,
        )


class TimedUploader(RetryingUploader):
    """A :class:`RetryingUploader` that times each request in ``exchanges`` and notes every acknowledged chunk
    the service later lists as missing (``forgotten``): an acknowledgement it did not keep."""

    def __init__(self, *args, exchanges: Exchanges, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.exchanges = exchanges
        self.forgotten: set[int] = set()

    def request(self, method: str, path: str, **kwargs) -> requests.Response | None:
        started = time.monotonic()
        resp = super().request(method, path, **kwargs)
        self.exchanges.add(started, None if resp is None else resp.status_code, f"{method} {path}")
        return resp

    def missing(self) -> list[int]:
        todo = super().missing()
        with self._lock:
            self.forgotten |= set(todo) & set(self.acked)
        return todo

    def bytes_forgotten(self) -> int:
        return sum(len(self.piece(i)) for i in self.forgotten)


@dataclass
class Kill:
    """A primary killed in the middle of an upload: when, what was acknowledged by then, the failover."""

    killed_at: float
    acked_at_kill: dict  # chunk index -> when its acknowledgement came
    killed: object  # what ``kill`` returned
    promoted: object  # what ``wait_failover`` returned: the new primary
    promoted_at: float


def upload_through_a_kill(uploader: TimedUploader, kill: Callable[[], object], wait_failover: Callable[[], object]) -> Kill:
    """``uploader`` sends every chunk while another thread calls ``kill()`` once a third are acknowledged, then
    ``wait_failover()``; each within a bounded wait."""
    seen: dict = {}

    def kill_mid_upload() -> None:
        wait_until(lambda: len(uploader.acked) >= uploader.total // 3, 120, "a third of the chunks", interval=0.002)
        seen["killed_at"] = time.monotonic()
        seen["killed"] = kill()
        seen["acked_at_kill"] = dict(uploader.acked)
        seen["promoted"] = wait_failover()
        seen["promoted_at"] = time.monotonic()

    with ThreadPoolExecutor(1) as pool:
        killer = pool.submit(kill_mid_upload)
        uploader.send_all()
        killer.result(timeout=60)
    assert len(seen["acked_at_kill"]) < uploader.total, "the primary died after the upload, not during it"
    return Kill(**seen)


def assert_within(figures: Figures, uploader: TimedUploader, worst_failure: float, recovery: float) -> None:
    """What a failover met by an upload may cost: no acknowledged byte, only cut connections and clean 503s (with
    ``Retry-After``), none slower than ``worst_failure``, a success again within ``recovery`` seconds."""
    assert figures.bytes_lost == 0
    assert figures.failed > 0, "no request met the failover"
    assert set(figures.failed_statuses) <= {None, 503}, figures  # a cut connection or a clean 503, never a 500
    assert {code for _, code, _ in uploader.server_errors} <= {"service_unavailable"}, uploader.summary()
    assert all(retry_after for _, _, retry_after in uploader.server_errors)
    assert figures.worst_failure < worst_failure, figures
    assert figures.recovered_after < recovery, figures


def assert_download_within(figures: Figures, worst_failure: float, recovery: float) -> None:
    """What a failover met by a download may cost: only cut connections and clean 503s, none slower than
    ``worst_failure``, a success again within ``recovery`` seconds."""
    assert set(figures.failed_statuses) <= {None, 503}, figures
    assert figures.worst_failure < worst_failure, figures
    assert figures.recovered_after < recovery, figures


def timed_get(exchanges: Exchanges, url: str, headers: dict, **kwargs) -> requests.Response | None:
    """A GET whose whole body is read, timed; None when the connection broke (or the body was cut)."""
    started = time.monotonic()
    try:
        resp = requests.get(url, headers=headers, timeout=REQUEST_TIMEOUT, **kwargs)
    except (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError):
        exchanges.add(started, None, f"GET {urlsplit(url).path}")
        return None
    exchanges.add(started, resp.status_code, f"GET {urlsplit(url).path}")
    return resp


def read_back(exchanges: Exchanges, base: str, headers: dict, stored: dict[str, str], deadline: float) -> None:
    """Every file of ``stored`` (id -> SHA-256) reads back byte-identical, each GET retried until ``deadline``."""
    for file_id, digest in stored.items():
        while True:
            resp = timed_get(exchanges, f"{base}/files/{file_id}", headers)
            if resp is not None and resp.status_code < 500:
                assert resp.status_code == 200, (file_id, resp.status_code, resp.text[:300])
                assert sha256(resp.content) == digest, f"file {file_id} read back different bytes"
                break
            assert time.monotonic() < deadline, f"file {file_id} did not read back before the deadline"
            time.sleep(0.1)


def upload_file(base: str, headers: dict, data: bytes, chunk: int, name: str, deadline: float) -> str:
    """``data`` uploaded in chunks of ``chunk`` bytes and completed, each request retried until ``deadline``: its id."""
    client = RetryingUploader(base, headers, data, chunk, deadline=deadline)
    client.create(name=name)
    client.send_all()
    record = client.complete()
    assert record["sha256"] == sha256(data)
    return record["id"]


def store_files(base: str, headers: dict, sizes: list[int], deadline: float) -> dict[str, str]:
    """Files of these sizes, uploaded and completed (chunks of a MiB): id -> SHA-256."""
    stored = {}
    for size in sizes:
        data = os.urandom(size)
        stored[upload_file(base, headers, data, MIB, f"before-{size}.bin", deadline)] = sha256(data)
    return stored


@dataclass
class CutDownload:
    body: bytes  # the whole file, as received across the cut and the resumes
    killed_at: float
    cut_at: int  # bytes received before the stream ended (the whole size when the kill did not cut it)


def download_through_a_kill(
    exchanges: Exchanges, url: str, headers: dict, size: int, kill: Callable[[], object], deadline: float
) -> CutDownload:
    """GET ``url`` (``size`` bytes) as a stream and ``kill()`` once a quarter of it came; then resume with a Range
    from the bytes received, as a download manager does, until every byte is in (or ``deadline``).  Meanwhile a
    failed resume is a cut connection or a 503 with ``Retry-After``, and every resume a 206 from where it asked."""
    received = bytearray()
    killed_at = None
    broke = None
    with requests.get(url, headers=headers, stream=True, timeout=REQUEST_TIMEOUT) as resp:
        assert resp.status_code == 200, resp.text[:300]
        try:
            for piece in resp.iter_content(MIB):
                received += piece
                if killed_at is None and len(received) >= size // 4:
                    killed_at = time.monotonic()
                    kill()
        except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
            broke = exc
    assert killed_at is not None
    exchanges.add(killed_at, None if broke is not None or len(received) < size else resp.status_code, "GET (the download)")
    cut_at = len(received)

    while len(received) < size:
        assert time.monotonic() < deadline, "the download did not resume before the deadline"
        resumed = timed_get(exchanges, url, {**headers, "Range": f"bytes={len(received)}-"})
        if resumed is None or resumed.status_code >= 500:
            if resumed is not None:
                assert resumed.status_code == 503 and error_code(resumed) == "service_unavailable", resumed.text[:300]
                assert resumed.headers["Retry-After"]
            time.sleep(0.1)
            continue
        assert resumed.status_code == 206, resumed.text[:300]
        assert resumed.headers["Content-Range"] == f"bytes {len(received)}-{size - 1}/{size}"
        received += resumed.content
    return CutDownload(bytes(received), killed_at, cut_at)
