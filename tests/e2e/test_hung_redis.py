"""Issue 18: a hung Redis costs seconds, not minutes.

The whole system as ``make run`` starts it (gateway, auth, files and admin under gunicorn, a private
Redis), a Redis of its own since this test freezes it: 20 clients keep calling list, metadata, chunk PUT
(upload sessions), tus PATCH and download through the gateway while the Redis process is stopped with
SIGSTOP for ``FREEZE`` seconds, then continued.  What an operator can rely on (docs/operations.md, "When
Redis hangs"), asserted with margins: every request answers within ``ANSWER_BOUND`` (a 503 with
``Retry-After`` while frozen, never a 500), ``/healthz`` of every service -- on the master's port (what
the chart's liveness probe calls) and on the main port -- answers within ``LIVENESS_BOUND`` at every
probe, the OpenAPI documents and ``/metrics`` always answer, every kind of request works again within ``RECOVERY_BOUND`` of SIGCONT with no process
restarted, every acknowledged chunk and tus offset is kept, and the consistency checker finds nothing
wrong.  The figures measured are printed (``-s``) for the record.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from .conftest import ADMIN_PASSWORD, System, login

pytestmark = [pytest.mark.timeout(240), pytest.mark.timing]

FREEZE = 30.0
CLIENTS = 20
CHUNK = 16 * 1024
CHUNKS = 40  # each client's upload session: more than it stores in the test (Redis is frozen most of it)
TUS_LENGTH = 40 * CHUNK
ANSWER_BOUND = 3.0
LIVENESS_BOUND = 0.5
RECOVERY_BOUND = 3.0
PAUSE = 0.1  # between one client's requests: the load stays on two shared cores
TUS = {"Tus-Resumable": "1.0.0"}
OCTET = "application/offset+octet-stream"
OK = {200, 201, 204, 206}


def redis_pid(root: Path) -> int:
    """The pid of the launcher's Redis: the server changes into its data folder (``--dir``) and renames its command line."""
    data_dir = (root / "data" / "redis").resolve()
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if Path(os.readlink(entry / "cwd")) == data_dir and b"-server" in (entry / "cmdline").read_bytes():
                return int(entry.name)
        except OSError:
            continue
    raise AssertionError(f"no Redis process in {data_dir}")


def gunicorn_pids(root: Path) -> set[int]:
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"gunicorn" in cmd and str(root).encode() in (entry / "environ").read_bytes():
                pids.add(int(entry.name))
    return pids


@dataclass
class Answer:
    kind: str
    started: float
    seconds: float
    status: int | None  # None: no answer (a cut body or a client-side error)
    retry_after: str | None = None
    error: str | None = None


@dataclass
class Client:
    n: int
    token: str
    session_id: str
    data: bytes
    tus_path: str
    tus_data: bytes
    file_id: str
    file_bytes: bytes
    acked_chunks: set[int] = field(default_factory=set)
    next_chunk: int = 0
    tus_acked: int = 0
    answers: list[Answer] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.http = requests.Session()
        self.http.headers["Authorization"] = f"Bearer {self.token}"


def timed(client: Client, kind: str, method: str, url: str, **kw) -> requests.Response | None:
    started = time.monotonic()
    try:
        resp = client.http.request(method, url, timeout=15, **kw)
    except requests.RequestException as exc:  # a body cut part-way (a download aborted within its budget)
        client.answers.append(Answer(kind, started, time.monotonic() - started, None, error=type(exc).__name__))
        return None
    client.answers.append(Answer(kind, started, time.monotonic() - started, resp.status_code, resp.headers.get("Retry-After")))
    return resp


def one_round(base: str, c: Client, step: int) -> None:
    kind = ("list", "meta", "chunk", "tus", "download")[step % 5]
    if kind == "list":
        timed(c, kind, "GET", f"{base}/files")
    elif kind == "meta":
        timed(c, kind, "GET", f"{base}/files/{c.file_id}/meta")
    elif kind == "download":
        resp = timed(c, kind, "GET", f"{base}/files/{c.file_id}")
        if resp is not None and resp.status_code == 200:
            assert resp.content == c.file_bytes, "a download answered 200 with other bytes"
    elif kind == "chunk" and c.next_chunk < CHUNKS:
        i = c.next_chunk
        resp = timed(c, kind, "PUT", f"{base}/uploads/{c.session_id}/chunks/{i}", data=c.data[i * CHUNK : (i + 1) * CHUNK])
        if resp is not None and resp.status_code in (200, 201):
            c.acked_chunks.add(i)
            c.next_chunk += 1
    elif kind == "tus" and c.tus_acked < TUS_LENGTH:
        piece = c.tus_data[c.tus_acked : c.tus_acked + CHUNK]
        headers = {**TUS, "Upload-Offset": str(c.tus_acked), "Content-Type": OCTET}
        resp = timed(c, kind, "PATCH", base + c.tus_path, data=piece, headers=headers)
        if resp is not None and resp.status_code == 204:
            c.tus_acked = int(resp.headers["Upload-Offset"])
        elif resp is not None and resp.status_code == 409:  # an earlier PATCH was kept although its answer was lost
            head = c.http.head(base + c.tus_path, headers=TUS, timeout=15)
            if head.status_code == 200:
                c.tus_acked = int(head.headers["Upload-Offset"])


def run_client(base: str, c: Client, until: float, failures: list) -> None:
    step = c.n
    try:
        while time.monotonic() < until:
            one_round(base, c, step)
            step += 1
            time.sleep(PAUSE)
    except BaseException as exc:  # reported by the test
        failures.append(f"client {c.n}: {exc!r}")


@dataclass
class Probe:
    url: str
    worst: float = 0.0
    failures: list[str] = field(default_factory=list)
    count: int = 0


def probe_loop(probes: list[Probe], until: float, stop: threading.Event) -> None:
    session = requests.Session()
    while time.monotonic() < until and not stop.is_set():
        for p in probes:
            started = time.monotonic()
            status: int | str
            try:
                status = session.get(p.url, timeout=5).status_code
            except requests.RequestException as exc:
                status = type(exc).__name__
            took = time.monotonic() - started
            p.count += 1
            p.worst = max(p.worst, took)
            if status != 200:
                p.failures.append(f"{status} after {took:.2f}s")
        stop.wait(0.25)


def setup_client(base: str, n: int, token: str) -> Client:
    api = requests.Session()
    api.headers["Authorization"] = f"Bearer {token}"
    data = os.urandom(CHUNK * CHUNKS)
    made = api.post(
        f"{base}/uploads",
        json={"name": f"session-{n}.bin", "total_size": len(data), "chunk_size": CHUNK, "mime_type": "application/octet-stream"},
        timeout=30,
    )
    assert made.status_code == 201, made.text
    tus_data = os.urandom(TUS_LENGTH)
    meta = f"filename {base64.b64encode(f'tus-{n}.bin'.encode()).decode()}"
    created = api.post(f"{base}/tus/", headers={**TUS, "Upload-Length": str(TUS_LENGTH), "Upload-Metadata": meta}, timeout=30)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    tus_path = location[location.index("/tus/") :]
    small = os.urandom(3 * 64 * 1024 + 123)
    stored = api.post(f"{base}/files", files={"file": (f"small-{n}.bin", small)}, timeout=30)
    assert stored.status_code == 201, stored.text
    return Client(n, token, made.json()["id"], data, tus_path, tus_data, stored.json()["id"], small)


def first_ok_after(base: str, c: Client, thawed: float, limit: float) -> dict[str, float]:
    """For each kind of request, seconds from SIGCONT until one of it succeeded (tried in turn, every 0.1 s)."""
    pending = {"list", "meta", "chunk", "tus", "download"}
    seen: dict[str, float] = {}
    step = 0
    while pending and time.monotonic() < thawed + limit:
        kind = ("list", "meta", "chunk", "tus", "download")[step % 5]
        step += 1
        if kind not in pending:
            continue
        before = len(c.answers)
        one_round(base, c, ("list", "meta", "chunk", "tus", "download").index(kind))
        new = c.answers[before:]
        if new and new[-1].status in OK:
            seen[kind] = time.monotonic() - thawed
            pending.discard(kind)
        else:
            time.sleep(0.1)
    return seen


def finish_and_verify(base: str, c: Client) -> None:
    """Send what was never acknowledged, complete both uploads, and read back every byte."""
    api = c.http
    status = api.get(f"{base}/uploads/{c.session_id}", timeout=30)
    assert status.status_code == 200, status.text
    for i in range(CHUNKS):
        if i not in c.acked_chunks:
            put = api.put(f"{base}/uploads/{c.session_id}/chunks/{i}", data=c.data[i * CHUNK : (i + 1) * CHUNK], timeout=30)
            assert put.status_code in (200, 201), put.text
    done = api.post(f"{base}/uploads/{c.session_id}/complete", timeout=60)
    assert done.status_code in (200, 201), done.text
    got = api.get(f"{base}/files/{c.session_id}", timeout=60)
    assert got.status_code == 200 and hashlib.sha256(got.content).digest() == hashlib.sha256(c.data).digest()

    head = api.head(base + c.tus_path, headers=TUS, timeout=30)
    assert head.status_code == 200, head.status_code
    offset = int(head.headers["Upload-Offset"])
    assert offset >= c.tus_acked, f"tus offset {offset} < acknowledged {c.tus_acked}"
    while offset < TUS_LENGTH:
        piece = c.tus_data[offset : offset + 8 * CHUNK]
        resp = api.patch(base + c.tus_path, data=piece, headers={**TUS, "Upload-Offset": str(offset), "Content-Type": OCTET}, timeout=30)
        assert resp.status_code == 204, resp.text
        offset = int(resp.headers["Upload-Offset"])
    tus_id = c.tus_path.rstrip("/").rsplit("/", 1)[-1]
    got = api.get(f"{base}/files/{tus_id}", timeout=60)
    assert got.status_code == 200 and got.content == c.tus_data


@pytest.fixture
def frozen_system(tmp_path):
    system = System(tmp_path, env={"GUNICORN_GRACEFUL_TIMEOUT": "2"})
    system.start()
    pid = None
    try:
        pid = redis_pid(tmp_path)
        yield system, pid
    finally:
        if pid is not None:
            os.kill(pid, signal.SIGCONT)  # whatever happened, never leave a stopped process behind
        system.stop()


def test_a_frozen_redis_costs_seconds_not_minutes(frozen_system):
    system, pid = frozen_system
    base = system.base
    admin = login(base, "admin", ADMIN_PASSWORD)
    tokens = []
    for u in range(4):
        made = admin.post("/admin/users", json={"username": f"hung{u}", "password": f"hung{u}-password-x"})
        assert made.status_code == 201, made.text
        token = login(base, f"hung{u}", f"hung{u}-password-x").token
        assert token
        tokens.append(token)
    with ThreadPoolExecutor(8) as pool:
        clients = list(pool.map(lambda n: setup_client(base, n, tokens[n % len(tokens)]), range(CLIENTS), timeout=120))
    workers_before = gunicorn_pids(system.root)

    liveness = [Probe(f"http://127.0.0.1:{system.metrics_ports[s]}/healthz") for s in ("auth", "files", "admin")]
    main_health = [Probe(f"http://127.0.0.1:{system.ports[s]}/healthz") for s in ("auth", "files", "admin")]
    # what needs no Redis always answers: the main port's /healthz, the OpenAPI documents, /metrics
    no_redis = [Probe(f"{base}/{s}/openapi.json") for s in ("auth", "files", "admin")]
    no_redis += [Probe(f"http://127.0.0.1:{system.metrics_ports[s]}/metrics") for s in ("auth", "files", "admin")]
    failures: list[str] = []
    warmup = 2.0
    started = time.monotonic()
    until = started + warmup + FREEZE + 1.0
    stop = threading.Event()
    threads = [threading.Thread(target=run_client, args=(base, c, until, failures)) for c in clients]
    threads.append(threading.Thread(target=probe_loop, args=([*liveness, *main_health], until + 10, stop)))
    threads.append(threading.Thread(target=probe_loop, args=(no_redis, until + 10, stop)))
    for t in threads:
        t.start()
    time.sleep(warmup)
    os.kill(pid, signal.SIGSTOP)
    frozen_at = time.monotonic()
    try:
        time.sleep(FREEZE)
    finally:
        os.kill(pid, signal.SIGCONT)
    thawed = time.monotonic()
    for t in threads[:-2]:
        t.join(30)
    recovered = first_ok_after(base, clients[0], thawed, 10.0)
    stop.set()
    for t in threads[-2:]:
        t.join(10)
    assert not any(t.is_alive() for t in threads), "a client or a probe never ended"

    answers = [a for c in clients for a in c.answers]
    during = [a for a in answers if frozen_at <= a.started < thawed]
    worst = max(answers, key=lambda a: a.seconds)
    worst_frozen = max((a.seconds for a in during), default=0.0)
    recovery = max(recovered.values(), default=float("inf"))
    print(
        f"\nhung redis: {len(answers)} requests ({len(during)} during the freeze), "
        f"worst {worst.seconds:.3f}s ({worst.kind} {worst.status}), worst while frozen {worst_frozen:.3f}s; "
        f"503s {sum(a.status == 503 for a in answers)}, cut {sum(a.status is None for a in answers)}; "
        f"liveness worst {max(p.worst for p in liveness):.3f}s over {sum(p.count for p in liveness)} probes; "
        f"main-port /healthz worst {max(p.worst for p in main_health):.3f}s; "
        f"OpenAPI and /metrics worst {max(p.worst for p in no_redis):.3f}s; "
        f"recovery {recovery:.3f}s ({recovered})"
    )

    for a in sorted(answers, key=lambda a: a.seconds)[-5:]:
        print(f"  slow: {a.kind} {a.status} {a.seconds:.3f}s, started {a.started - frozen_at:+.3f}s from the freeze")
    assert not failures, failures
    slow = [a for a in answers if a.seconds > ANSWER_BOUND]
    assert not slow, f"{len(slow)} answers over {ANSWER_BOUND}s, e.g. {slow[:5]}"
    bad = [a for a in answers if a.status is not None and a.status not in OK | {503}]
    assert not bad, f"unexpected statuses: {bad[:10]}"
    no_retry_after = [a for a in answers if a.status == 503 and not a.retry_after]
    assert not no_retry_after, no_retry_after[:5]
    cut = [a for a in answers if a.status is None]
    assert all(a.kind == "download" for a in cut), cut[:5]
    assert sum(a.status == 503 for a in during) > 0, "no 503 while Redis was frozen"
    for p in [*liveness, *main_health]:  # the master's (the chart's liveness probe) and the main port's
        assert p.count >= 20 and not p.failures, (p.url, p.failures[:5])
        assert p.worst < LIVENESS_BOUND, (p.url, p.worst)
    for p in no_redis:
        assert not p.failures and p.worst < ANSWER_BOUND, (p.url, p.worst, p.failures[:5])
    assert set(recovered) == {"list", "meta", "chunk", "tus", "download"}, recovered
    assert recovery < RECOVERY_BOUND, recovered
    assert gunicorn_pids(system.root) == workers_before, "a gunicorn process was restarted"

    with ThreadPoolExecutor(8) as pool:
        for done in [pool.submit(finish_and_verify, base, c) for c in clients]:
            done.result(timeout=120)
    check = admin.get("/admin/consistency", params={"deep": "true", "strict": "true"}, timeout=120)
    assert check.status_code == 200, check.text
    assert check.json()["ok"], check.json()
