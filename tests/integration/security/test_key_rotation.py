"""Rotating every key with no failed request: both token keyrings and the encryption master key.

``test_every_key_rotates_under_load_with_rolling_restarts`` runs the whole system as real
gunicorn processes (auth, two files replicas, admin) on one real Redis, with clients busy
the whole time (log in, refresh, read, upload, download, and admin views that make
service-to-service calls), and rolls every replica, one at a time (the new one ready and
in rotation before the old one is taken out and stopped, as a Kubernetes rolling update
does), through the documented procedure (docs/operations.md, "Rotating keys"):

=========  ====================  =======================  ===============
phase      USER_TOKEN_KEYS       SERVICE_TOKEN_KEYS       ENCRYPTION_KEYS
=========  ====================  =======================  ===============
start      A                     A                        K1
add        A,B  (B verifies)     A,B                      K1,K2 (K2 unwraps)
switch     B,A  (B signs)        B,A                      K2,K1 (K2 wraps)
(rekey)    ``redfile-rekey`` re-wraps every data key under K2; wait until every
           A-signed token has expired (ACCESS_TOKEN_TTL + 5 s leeway, service
           tokens SERVICE_TOKEN_TTL + 5 s) since the last signer moved to B
retire     B                     B                        K2
=========  ====================  =======================  ===============

The three keyrings ride the same restarts (an operator may rotate them separately; the
steps are the same), so the test pays the rolling restarts and the token age-out once.

"No request fails" means: every request the clients make, in every phase and while
replicas come and go, gets its expected 2xx, and every download is byte-identical.  The
clients behave as documented: they refresh an access token before it expires (its
``expires_in``), never use an expired one.  A token that has expired is refused with
401 whatever the keys -- rotation or not -- so a client holding one (here: one that
logged in before the switch and slept across the retire step) must refresh; the test
checks that this refresh works (refresh tokens are opaque, stored hashed in Redis, and
do not depend on any signing key) and that the 401 it got first is the ordinary one.

The other tests (in-process, real Redis) cover the encryption key's failure and race
cases: retiring K1 before re-wrapping fails closed (``stored_data_corrupt``, never wrong
bytes) and the command says what remains; putting K1 back and re-wrapping recovers;
and the re-wrap is compare-and-set per file against a concurrent delete, rename,
another re-wrap and an upload completing, resumable from its cursor and idempotent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import itertools
import json
import os
import random
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from redfile_common.tokens import LEEWAY_SECONDS
from redfile_dev.testing import auth_header, settings_overrides, user_token
from redfile_dev.testing import test_env as service_env

USER_A, USER_B = "user-a:" + "ua" * 20, "user-b:" + "ub" * 20
SVC_A, SVC_B = "svc-a:" + "sa" * 20, "svc-b:" + "sb" * 20
K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()
ACCESS_TTL = 30  # the shortest ACCESS_TOKEN_TTL auth accepts
SERVICE_TTL = 5
REFRESH_MARGIN = 10  # clients refresh an access token this many seconds before it expires
ADMIN_PASSWORD = "bootstrap-admin-password-1"
USER_PASSWORD = "rotation-user-password-1"
TIMEOUT = 30
CHUNK = 16 * 1024

PHASES = {
    "start": (USER_A, SVC_A, K1),
    "add": (f"{USER_A},{USER_B}", f"{SVC_A},{SVC_B}", f"{K1},{K2}"),
    "switch": (f"{USER_B},{USER_A}", f"{SVC_B},{SVC_A}", f"{K2},{K1}"),
    "retire": (USER_B, SVC_B, K2),
}


def keys_env(phase: str) -> dict[str, str]:
    user, svc, enc = PHASES[phase]
    return {"USER_TOKEN_KEYS": user, "SERVICE_TOKEN_KEYS": svc, "ENCRYPTION_KEYS": enc}


# -- a Kubernetes Service, in miniature ---------------------------------------------------------
class Pool:
    """The live replicas of one service: round-robin; a replica is drained before it is stopped."""

    def __init__(self, name: str, procs) -> None:
        self.name = name
        self._live = list(procs)
        self._inflight: Counter = Counter()
        self._cond = threading.Condition()
        self._rr = itertools.count()

    @contextmanager
    def pick(self):
        with self._cond:
            proc = self._live[next(self._rr) % len(self._live)]
            self._inflight[proc] += 1
        try:
            yield proc
        finally:
            with self._cond:
                self._inflight[proc] -= 1
                self._cond.notify_all()

    def replicas(self) -> list:
        with self._cond:
            return list(self._live)

    def add(self, proc) -> None:
        with self._cond:
            self._live.append(proc)

    def drain(self, proc, timeout: float = 60) -> None:
        """Out of rotation (the endpoint is removed), then wait for its requests in flight to end."""
        with self._cond:
            self._live.remove(proc)
            assert self._cond.wait_for(lambda: self._inflight[proc] == 0, timeout), f"{self.name} did not drain"


HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "content-encoding", "host"}


def proxy_app(pool: Pool, record):
    """A WSGI reverse proxy over ``pool``: what admin's AUTH_URL and FILES_URL point at."""
    from werkzeug.wrappers import Request, Response

    def app(environ, start_response):
        req = Request(environ)
        uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or req.full_path
        headers = {k: v for k, v in req.headers.items() if k.lower() not in HOP_BY_HOP}
        headers["Connection"] = "close"
        try:
            with pool.pick() as proc:
                up = requests.request(
                    req.method, proc.url + uri, headers=headers, data=req.get_data(), timeout=TIMEOUT, allow_redirects=False
                )
        except requests.RequestException as exc:
            record(f"upstream:{pool.name}", False, f"{type(exc).__name__}")
            return Response("upstream unreachable", status=502)(environ, start_response)
        record(f"upstream:{pool.name}", up.status_code < 400, f"{up.status_code} {req.method} {req.path}")
        out = Response(up.content, status=up.status_code)
        for k, v in up.headers.items():
            if k.lower() not in HOP_BY_HOP:
                out.headers[k] = v
        return out(environ, start_response)

    return app


# -- what the clients saw -------------------------------------------------------------------------
@dataclass
class Journal:
    _phase: str = "start"
    started: float = field(default_factory=time.monotonic)
    timeline: list = field(default_factory=list)  # (seconds since start, phase entered): in failure messages
    ok: dict = field(default_factory=lambda: defaultdict(Counter))  # phase -> kind -> successes
    failures: list = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    tokens: list = field(default_factory=list)  # (kid, exp) of every access token handed out

    @property
    def phase(self) -> str:
        return self._phase

    @phase.setter
    def phase(self, value: str) -> None:
        self.timeline.append((round(time.monotonic() - self.started, 1), value))
        self._phase = value

    def record(self, kind: str, ok: bool, detail: str = "") -> None:
        with self.lock:
            if ok:
                self.ok[self.phase][kind] += 1
            else:
                self.failures.append((self.phase, kind, detail))

    def minted(self, token: str) -> None:
        with self.lock:
            self.tokens.append((jwt.get_unverified_header(token)["kid"], jwt.decode(token, options={"verify_signature": False})["exp"]))

    def wait_for(self, kinds: set[str], timeout: float = 60) -> None:
        """Until every kind of request has succeeded at least once in the current phase."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                missing = kinds - {k for k, n in self.ok[self.phase].items() if n}
                if not missing or self.failures:
                    return
            time.sleep(0.2)
        raise AssertionError(f"phase {self.phase}: no successful {sorted(missing)} within {timeout} s")


def call(pool: Pool, journal: Journal, kind: str, method: str, path: str, expect=(200,), **kw) -> requests.Response | None:
    headers = {**(kw.pop("headers", None) or {}), "Connection": "close"}
    try:
        with pool.pick() as proc:
            resp = requests.request(method, proc.url + path, headers=headers, timeout=TIMEOUT, **kw)
    except requests.RequestException as exc:
        journal.record(kind, False, f"{type(exc).__name__}: {exc}")
        return None
    good = resp.status_code in expect
    journal.record(kind, good, "" if good else f"{resp.status_code} {method} {path}: {resp.text[:200]}")
    return resp if good else None


class Session:
    """A client as documented: logs in, refreshes before its access token expires, never uses an expired one."""

    def __init__(self, auth: Pool, journal: Journal, username: str, password: str) -> None:
        self.auth, self.journal, self.username, self.password = auth, journal, username, password
        self.access = self.refresh_token = ""
        self.expires = 0.0

    def _take(self, resp: requests.Response | None) -> bool:
        if resp is None:
            return False
        body = resp.json()
        self.access, self.refresh_token = body["access_token"], body["refresh_token"]
        self.expires = time.time() + body["expires_in"]
        self.journal.minted(self.access)
        return True

    def login(self) -> bool:
        return self._take(
            call(self.auth, self.journal, "login", "POST", "/auth/login", json={"username": self.username, "password": self.password})
        )

    def refresh(self) -> bool:
        return self._take(call(self.auth, self.journal, "refresh", "POST", "/auth/refresh", json={"refresh_token": self.refresh_token}))

    def headers(self) -> dict[str, str] | None:
        """For the next request: the access token, refreshed first when it is about to expire (None: that failed)."""
        if time.time() > self.expires - REFRESH_MARGIN and not self.refresh():
            return None
        return auth_header(self.access)


@dataclass
class Known:
    """Files whose bytes the clients know: every download must match."""

    items: dict = field(default_factory=dict)  # id -> sha256
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, file_id: str, data: bytes) -> None:
        with self.lock:
            self.items[file_id] = hashlib.sha256(data).hexdigest()

    def sample(self) -> tuple[str, str]:
        with self.lock:
            return random.choice(list(self.items.items()))


def upload_single(files: Pool, journal: Journal, headers: dict | None, data: bytes, name: str) -> str | None:
    resp = call(files, journal, "upload", "POST", "/files", expect=(201,), headers=headers, files={"file": (name, data)})
    return resp.json()["id"] if resp is not None else None


def upload_session(files: Pool, journal: Journal, session: Session, data: bytes, name: str, *, pause=None) -> str | None:
    """A chunked upload, each request through the next replica (``pause(upload_id, i)`` runs before chunk i)."""
    resp = call(
        files,
        journal,
        "upload",
        "POST",
        "/uploads",
        expect=(201,),
        headers=session.headers(),
        json={"name": name, "total_size": len(data), "chunk_size": CHUNK},
    )
    if resp is None:
        return None
    up = resp.json()
    for i in range(up["total_chunks"]):
        if pause is not None:
            pause(up["id"], i)
        if (
            call(
                files,
                journal,
                "upload",
                "PUT",
                f"/uploads/{up['id']}/chunks/{i}",
                expect=(201,),
                headers=session.headers(),
                data=data[i * CHUNK : (i + 1) * CHUNK],
            )
            is None
        ):
            return None
    done = call(files, journal, "upload", "POST", f"/uploads/{up['id']}/complete", expect=(201,), headers=session.headers())
    return up["id"] if done is not None else None


def download(files: Pool, journal: Journal, kind: str, headers: dict | None, file_id: str, sha256: str) -> None:
    resp = call(files, journal, kind, "GET", f"/files/{file_id}", headers=headers)
    if resp is not None and hashlib.sha256(resp.content).hexdigest() != sha256:
        journal.record(kind, False, f"download of {file_id} is not byte-identical")


def start_rekey(redis_url: str, encryption_keys: str, *args: str) -> subprocess.Popen:
    """``redfile-rekey``, the console script, started as an operator runs it (the files service's environment)."""
    env = {**os.environ, **service_env(redis_url, SERVICE_NAME="files", ENCRYPTION_KEYS=encryption_keys)}
    command = Path(sys.executable).with_name("redfile-rekey")
    return subprocess.Popen([str(command), "--quiet", *args], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish_rekey(proc: subprocess.Popen) -> tuple[int, dict]:
    """Its exit status and JSON summary."""
    out, err = proc.communicate(timeout=120)
    assert out.strip(), err
    return proc.returncode, json.loads(out.strip().splitlines()[-1])


def rekey(redis_url: str, encryption_keys: str, *args: str) -> tuple[int, dict]:
    return finish_rekey(start_rekey(redis_url, encryption_keys, *args))


def stored_deks(redis_client) -> list[str]:
    """Every data key in Redis (files and uploads), as stored."""
    out = []
    for key in redis_client.scan_iter(match="files:{*}:*", _type="hash", count=500):
        if key.endswith((b":meta", b":upload")):
            dek = redis_client.hget(key, "dek")
            if dek:
                out.append(dek.decode())
    return out


def dek_of(redis_client, file_id: str, kind: str = "meta") -> str:
    """The stored data key of a file (``meta``) or an upload (``upload``)."""
    return (redis_client.hget(f"files:{{{file_id}}}:{kind}", "dek") or b"").decode()


# -- the whole system, every key rotated -----------------------------------------------------------
def test_every_key_rotates_under_load_with_rolling_restarts(redis_url, redis_client, gunicorn, serve):
    journal = Journal()
    common = {"ACCESS_TOKEN_TTL": str(ACCESS_TTL), "SERVICE_TOKEN_TTL": str(SERVICE_TTL)}
    auth_env = {
        **common,
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "ARGON2_PARALLELISM": "1",
        "LOGIN_MAX_FAILURES_PER_IP": "1000",
    }
    files_env = {**common, "MAX_CHUNK_BYTES": str(CHUNK)}
    auth_pool, files_pool = Pool("auth", []), Pool("files", [])
    # admin reaches auth and files through their "Services": proxies over whatever replicas are live
    admin_env = {
        **common,
        "AUTH_URL": serve(proxy_app(auth_pool, journal.record)),
        "FILES_URL": serve(proxy_app(files_pool, journal.record)),
    }
    env = {"auth": auth_env, "files": files_env, "admin": admin_env}
    counts = {"auth": 1, "files": 2, "admin": 1}

    def start(service: str, phase: str, n: int = 1):
        return gunicorn(service, redis_url, n, **env[service], **keys_env(phase))

    with ThreadPoolExecutor(3) as pool:
        started = dict(zip(counts, pool.map(lambda s: start(s, "start", counts[s]), counts)))
    for proc in started["auth"]:
        auth_pool.add(proc)
    for proc in started["files"]:
        files_pool.add(proc)
    admin_pool = Pool("admin", started["admin"])
    pools = {"auth": auth_pool, "files": files_pool, "admin": admin_pool}

    def roll(service: str, phase: str) -> None:
        """One replica at a time: the new one ready and in rotation, then the old one drained and stopped."""
        for old in pools[service].replicas():
            (new,) = start(service, phase)
            pools[service].add(new)
            pools[service].drain(old)
            old.stop()

    def roll_all(services: list[str], phase: str) -> None:
        with ThreadPoolExecutor(len(services)) as pool:
            for future in [pool.submit(roll, s, phase) for s in services]:
                future.result()

    # -- before the load: an admin, a user, files wrapped by K1, an upload left half-done
    admin = Session(auth_pool, journal, "admin", ADMIN_PASSWORD)
    assert admin.login()
    assert call(
        admin_pool,
        journal,
        "setup",
        "POST",
        "/admin/users",
        expect=(201,),
        headers=admin.headers(),
        json={"username": "carol", "password": USER_PASSWORD, "role": "user"},
    )
    # one Session per thread: two threads refreshing one refresh token is a replay (the family is revoked)
    carol, carol_uploads, carol_straddles = (Session(auth_pool, journal, "carol", USER_PASSWORD) for _ in range(3))
    assert carol.login() and carol_uploads.login() and carol_straddles.login()
    old_files, new_files = Known(), Known()
    for i in range(4):
        data = os.urandom(CHUNK * (i % 3) + 1000 + i)
        if i % 2:
            file_id = upload_single(files_pool, journal, carol.headers(), data, f"old-{i}.bin")
        else:
            file_id = upload_session(files_pool, journal, carol, data, f"old-{i}.bin")
        assert file_id, journal.failures
        old_files.add(file_id, data)
    assert {d.split(":")[0] for d in stored_deks(redis_client)} == {"k1"}
    straddler: dict[str, Any] = {"data": os.urandom(3 * CHUNK + 77)}  # an upload started under K1, finished after the re-wrap
    straddler_resumed = threading.Event()

    def straddle() -> None:
        def pause(upload_id: str, i: int) -> None:
            straddler["upload"] = upload_id
            if i == 1:
                straddler_resumed.wait(timeout=600)

        straddler["id"] = upload_session(files_pool, journal, carol_straddles, straddler["data"], "straddler.bin", pause=pause)

    straddler_thread = threading.Thread(target=straddle, daemon=True)
    straddler_thread.start()

    # -- the clients: every request must succeed, every download match
    stop = threading.Event()

    def user_client(session: Session) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            if n % 7 == 3:
                session.login()
            elif n % 5 == 1:
                session.refresh()
            call(auth_pool, journal, "me", "GET", "/auth/me", headers=session.headers())
            call(files_pool, journal, "list", "GET", "/files", headers=session.headers())
            download(files_pool, journal, "download_old", session.headers(), *old_files.sample())
            if new_files.items:
                download(files_pool, journal, "download_new", session.headers(), *new_files.sample())
            time.sleep(0.1)

    def uploader(session: Session) -> None:
        for n in itertools.count():
            if stop.is_set():
                return
            data = os.urandom(random.randint(1, 3 * CHUNK))
            if n % 2:
                file_id = upload_single(files_pool, journal, session.headers(), data, f"new-{n}.bin")
            else:
                file_id = upload_session(files_pool, journal, session, data, f"new-{n}.bin")
            if file_id:
                new_files.add(file_id, data)
                download(files_pool, journal, "download_new", session.headers(), file_id, hashlib.sha256(data).hexdigest())
            time.sleep(0.1)

    def admin_client(session: Session) -> None:
        while not stop.is_set():
            call(admin_pool, journal, "admin_usage", "GET", "/admin/users/carol/usage", headers=session.headers())  # -> auth, files
            resp = call(admin_pool, journal, "admin_stats", "GET", "/admin/stats", headers=session.headers())
            if resp is not None and resp.json()["unavailable"]:
                journal.record("admin_stats", False, f"parts unavailable: {resp.json()['unavailable']}")
            time.sleep(0.1)

    users = [Session(auth_pool, journal, "carol", USER_PASSWORD) for _ in range(2)]
    for s in users:
        assert s.login()
    threads = [threading.Thread(target=user_client, args=(s,), daemon=True) for s in users]
    threads += [
        threading.Thread(target=uploader, args=(carol_uploads,), daemon=True),
        threading.Thread(target=admin_client, args=(admin,), daemon=True),
    ]
    for t in threads:
        t.start()
    every_kind = {
        "login",
        "refresh",
        "me",
        "list",
        "download_old",
        "download_new",
        "upload",
        "admin_usage",
        "admin_stats",
        "upstream:auth",
        "upstream:files",
    }

    try:
        journal.wait_for(every_kind)
        # add: every replica learns B (verifies it) and K2 (unwraps with it); A and K1 still sign and wrap
        journal.phase = "rolling:add"
        roll_all(["auth", "files", "admin"], "add")
        journal.phase = "add"
        journal.wait_for(every_kind)
        stale = Session(auth_pool, journal, "carol", USER_PASSWORD)  # a client that will sleep across the retire step
        assert stale.login() and jwt.get_unverified_header(stale.access)["kid"] == "user-a"

        # switch: the signers first (auth: access tokens, admin: service tokens), then files (wraps with K2)
        journal.phase = "rolling:switch"
        roll_all(["auth", "admin"], "switch")
        signers_switched = time.time()
        roll_all(["files"], "switch")
        journal.phase = "switch"
        # re-wrap every data key under K2, with the load running; then the straddling upload finishes
        assert dek_of(redis_client, straddler["upload"], "upload").startswith("k1:")
        command = start_rekey(redis_url, PHASES["switch"][2])
        journal.wait_for(every_kind)
        code, report = finish_rekey(command)
        assert code == 0, report
        assert report["complete"] and report["remaining"] == 0 and report["failed"] == 0, report
        assert report["rewrapped"] >= len(old_files.items) + 1, report  # the old files and the half-done upload
        assert set(report["by_key"]) == {"k2"}, report
        assert dek_of(redis_client, straddler["upload"], "upload").startswith("k2:")
        journal.phase = "rekeyed"
        straddler_resumed.set()
        straddler_thread.join(timeout=120)
        assert straddler.get("id"), journal.failures
        old_files.add(straddler["id"], straddler["data"])
        assert {d.split(":")[0] for d in stored_deks(redis_client)} == {"k2"}  # the straddler's file too

        # wait until no token signed by A can still be accepted: the documented rule ...
        retire_at = signers_switched + max(ACCESS_TTL, SERVICE_TTL) + LEEWAY_SECONDS + 1
        # ... which every A-signed access token the clients were handed obeys
        last_a = max(exp for kid, exp in journal.tokens if kid == "user-a")
        assert last_a + LEEWAY_SECONDS < retire_at
        assert all(kid == "user-b" for kid, exp in journal.tokens if exp > retire_at - LEEWAY_SECONDS)
        while time.time() < retire_at and not journal.failures:
            time.sleep(0.2)

        # retire: A and K1 are gone from every replica
        journal.phase = "rolling:retire"
        roll_all(["auth", "files", "admin"], "retire")
        journal.phase = "retired"
        journal.wait_for(every_kind)
    finally:
        stop.set()
        straddler_resumed.set()
        for t in threads:
            t.join(timeout=60)

    assert journal.failures == [], (journal.failures[:20], journal.timeline)
    print("key rotation timeline (s):", journal.timeline)
    for phase in ("start", "add", "switch", "retired"):
        assert every_kind <= set(journal.ok[phase]), (phase, dict(journal.ok[phase]))
    assert sum(sum(c.values()) for c in journal.ok.values()) > 200

    # After the retire step every stored byte is still there and readable under K2 alone.
    headers = carol.headers()
    for known in (old_files, new_files):
        for file_id, sha in known.items.items():
            download(files_pool, journal, "final_check", headers, file_id, sha)
    assert journal.failures == [], journal.failures[:20]

    # The client that slept across the retire step: its access token expired long ago (401, as it
    # would be without any rotation); its refresh token still works, as does the new access token.
    answer = requests.get(f"{auth_pool.replicas()[0].url}/auth/me", headers=auth_header(stale.access), timeout=TIMEOUT)
    assert answer.status_code == 401 and answer.json()["error"]["code"] == "invalid_token"
    assert time.time() > jwt.decode(stale.access, options={"verify_signature": False})["exp"] + LEEWAY_SECONDS
    assert stale.refresh() and jwt.get_unverified_header(stale.access)["kid"] == "user-b"
    assert call(files_pool, journal, "stale_client", "GET", "/files", headers=auth_header(stale.access))
    assert journal.failures == []


# -- the encryption master key's failure and race cases, in process (real Redis) ---------------------
SMALL = 64  # bytes per chunk: many chunks, many keys


@pytest.fixture
def files_app(redis_url, redis_client):
    """``files_app(encryption_keys)`` -> (test client, alice's headers, the app's FilesDomain)."""
    from redfile_common.app import domain_of
    from redfile_files import create_app
    from redfile_files.domain import FilesDomain

    def build(keys: str):
        app = create_app(
            **settings_overrides(redis_url, encryption_keys=keys, max_chunk_bytes=SMALL, max_single_upload_bytes=4096, sweep_interval=0)
        )
        settings = app.extensions["redfile"].settings
        return app.test_client(), auth_header(user_token(settings, redis_client, "alice")), domain_of(FilesDomain, app)

    return build


def put_upload(client, headers, data: bytes, *, chunks: int | None = None) -> str:
    """A session upload with the first ``chunks`` chunks sent (all by default); its id."""
    up = client.post("/uploads", headers=headers, json={"name": "f.bin", "total_size": len(data), "chunk_size": SMALL}).json
    for i in range(up["total_chunks"] if chunks is None else chunks):
        assert client.put(f"/uploads/{up['id']}/chunks/{i}", headers=headers, data=data[i * SMALL : (i + 1) * SMALL]).status_code == 201
    return up["id"]


def complete(client, headers, upload_id: str) -> None:
    resp = client.post(f"/uploads/{upload_id}/complete", headers=headers)
    assert resp.status_code == 201, resp.json


def test_retiring_the_old_master_key_before_the_rekey_fails_closed(files_app, redis_url, redis_client):
    old_client, alice, _ = files_app(K1)
    datas = [os.urandom(3 * SMALL + 7), os.urandom(2000)]
    ids = [put_upload(old_client, alice, datas[0])]
    complete(old_client, alice, ids[0])
    single = old_client.post("/files", headers=alice, data={"file": (io.BytesIO(datas[1]), "one.bin")})
    assert single.status_code == 201
    ids.append(single.json["id"])
    half = os.urandom(2 * SMALL)
    half_id = put_upload(old_client, alice, half, chunks=1)

    # K1 dropped before the re-wrap: every read and write of those files is refused, never answered with bytes
    early, alice, _ = files_app(K2)
    for file_id, data in zip(ids, datas):
        for extra in ({}, {"Range": "bytes=1-20"}):
            resp = early.get(f"/files/{file_id}", headers={**alice, **extra})
            assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt", resp.data[:200]
            assert "key" in resp.json["error"]["message"] and data[1:20] not in resp.data
    resp = early.put(f"/uploads/{half_id}/chunks/1", headers=alice, data=half[SMALL:])
    assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt"
    assert early.get("/files", headers=alice).status_code == 200  # the listing does not need the keys

    # the command says so, and changes nothing it cannot open
    code, report = rekey(redis_url, K2)
    assert code == 1 and not report["complete"], report
    assert (report["rewrapped"], report["failed"], report["remaining"]) == (0, 3, 3), report
    assert sorted(report["failed_ids"]) == sorted([*ids, half_id]) and report["by_key"] == {"k1": 3}
    assert all(dek_of(redis_client, i).startswith("k1:") for i in ids) and dek_of(redis_client, half_id, "upload").startswith("k1:")

    # the way back: K1 again (second), re-wrap, then K1 can go
    from redfile_files.crypto import Encryption, parse_master_keys
    from redfile_files.maintenance.rekey import Rekeyer
    from redfile_files.storage.datakeys import DataKeys

    both = Encryption(parse_master_keys(f"{K2},{K1}"))
    dry = Rekeyer(DataKeys(redis_client), both).run(dry_run=True)  # is it safe to retire K1? not yet
    assert not dry.complete and (dry.remaining, dry.rewrapped, dry.failed) == (3, 0, 0), dry
    code, report = rekey(redis_url, f"{K2},{K1}")
    assert code == 0 and report["complete"] and report["rewrapped"] == 3 and report["by_key"] == {"k2": 3}, report
    dry = Rekeyer(DataKeys(redis_client), Encryption(parse_master_keys(K2))).run(dry_run=True)  # now it is
    assert dry.complete and dry.by_key == {"k2": 3}, dry
    late, alice, _ = files_app(K2)
    for file_id, data in zip(ids, datas):
        assert late.get(f"/files/{file_id}", headers=alice).data == data
    assert late.put(f"/uploads/{half_id}/chunks/1", headers=alice, data=half[SMALL:]).status_code == 201
    complete(late, alice, half_id)
    assert late.get(f"/files/{half_id}", headers=alice).data == half


def test_the_rekey_is_compare_and_set_per_file(files_app, redis_client):
    from redfile_files.crypto import Encryption, parse_master_keys
    from redfile_files.maintenance.rekey import Rekeyer
    from redfile_files.storage.datakeys import DataKeys

    old, alice, _ = files_app(K1)
    data = {name: os.urandom(2 * SMALL + i) for i, name in enumerate(("deleted", "renamed", "raced", "kept", "uploading"))}
    ids = {}
    for name, payload in data.items():
        ids[name] = put_upload(old, alice, payload)
        if name != "uploading":
            complete(old, alice, ids[name])
    new, alice, _ = files_app(f"{K2},{K1}")
    encryption = Encryption(parse_master_keys(f"{K2},{K1}"))
    meets: Counter = Counter()

    class Racing(DataKeys):
        """Someone else acts on the file between the command's read and its write."""

        def swap(self, key: bytes, old_dek: str, new_dek: str) -> str:
            file_id = key.decode().split("{")[1].split("}")[0]
            if file_id == ids["deleted"] and not meets["deleted"]:
                meets["deleted"] += 1
                assert new.delete(f"/files/{file_id}", headers=alice).status_code == 204
            elif file_id == ids["renamed"] and not meets["renamed"]:
                meets["renamed"] += 1
                assert new.post(f"/files/{file_id}/rename", headers=alice, json={"new_name": "moved.bin"}).status_code == 200
            elif file_id == ids["raced"] and not meets["raced"]:
                meets["raced"] += 1  # another run of the command got there first
                redis_client.hset(key, "dek", encryption.rewrap(file_id, old_dek))
            return super().swap(key, old_dek, new_dek)

    report = Rekeyer(Racing(redis_client), encryption, batch=3).run()
    assert meets == {"deleted": 1, "renamed": 1, "raced": 1}
    assert report.complete and report.gone == 1 and report.rewrapped == 3 and report.failed == 0, report  # renamed, kept, uploading
    assert report.by_key == {"k2": 4} and report.passes == 2  # the second pass found nothing left
    assert redis_client.keys(f"files:{{{ids['deleted']}}}:*") == []  # no hash brought back to life by the write
    assert new.get(f"/files/{ids['renamed']}/meta", headers=alice).json["name"] == "moved.bin"
    complete(new, alice, ids["uploading"])
    k2_only, alice, _ = files_app(K2)
    for name in ("renamed", "raced", "kept", "uploading"):
        assert dek_of(redis_client, ids[name]).startswith("k2:")
        assert k2_only.get(f"/files/{ids[name]}", headers=alice).data == data[name]
    assert Rekeyer(DataKeys(redis_client), encryption).run().rewrapped == 0  # idempotent


def test_an_upload_completing_while_the_rekey_runs_keeps_the_new_wrapping(files_app, redis_client, monkeypatch):
    """The completion read the upload's key (wrapped by K1) before the re-wrap and commits after it."""
    from redfile_files.crypto import Encryption, parse_master_keys
    from redfile_files.maintenance.rekey import Rekeyer
    from redfile_files.storage.datakeys import DataKeys

    old, alice, _ = files_app(K1)
    payload = os.urandom(3 * SMALL)
    upload_id = put_upload(old, alice, payload)
    new, alice, domain = files_app(f"{K2},{K1}")
    commit = domain.storage.files.commit

    def rekey_then_commit(*args, **kwargs):
        assert Rekeyer(DataKeys(redis_client), Encryption(parse_master_keys(f"{K2},{K1}"))).run().rewrapped == 1
        return commit(*args, **kwargs)

    monkeypatch.setattr(domain.storage.files, "commit", rekey_then_commit)
    complete(new, alice, upload_id)
    assert dek_of(redis_client, upload_id).startswith("k2:")
    k2_only, alice, _ = files_app(K2)
    assert k2_only.get(f"/files/{upload_id}", headers=alice).data == payload


def test_the_rekey_resumes_from_its_cursor(files_app, redis_client):
    from redfile_files.crypto import Encryption, parse_master_keys
    from redfile_files.maintenance.rekey import Rekeyer
    from redfile_files.storage.datakeys import DataKeys

    old, alice, _ = files_app(K1)
    ids = [put_upload(old, alice, os.urandom(SMALL + i)) for i in range(8)]
    for file_id in ids:
        complete(old, alice, file_id)
    encryption = Encryption(parse_master_keys(f"{K2},{K1}"))
    lines = []

    class Interrupted(Exception):
        pass

    def progress(line: dict) -> None:
        lines.append(line)
        if len(lines) == 3:
            raise Interrupted()  # the operator's session dropped

    with pytest.raises(Interrupted):
        Rekeyer(DataKeys(redis_client), encryption, batch=2, progress=progress).run()
    cursor, first = lines[-1]["cursor"], lines[-1]["rewrapped"]
    assert cursor != 0 and first < len(ids)
    report = Rekeyer(DataKeys(redis_client), encryption, batch=2).run(cursor=cursor)
    assert report.complete and report.passes >= 2  # a resumed pass is always followed by a full one
    assert first + report.rewrapped == len(ids)  # each file re-wrapped exactly once over both runs
    again = Rekeyer(DataKeys(redis_client), encryption).run(dry_run=True)
    assert again.complete and again.rewrapped == 0 and again.by_key == {"k2": len(ids)}
