"""Issue 9, fault 3: Redis unreachable, then back on the same port; auth, files and admin as real gunicorn processes.

While Redis is down every service answers a representative set of routes
(login, refresh, me; list, download, one-request upload, session create, chunk,
status, complete, the seed's chunk, quota, tus creation; the admin's users,
stats, usage, audit and files) with 503 ``service_unavailable`` and a
``Retry-After``, in the one JSON error shape, never a 500, and within the
bound its Redis settings give (each request's timeout is that bound).
``/readyz`` fails while ``/healthz`` stays 200.  When Redis returns on the same
port (its AOF kept the data) every service recovers by itself -- none is
restarted -- and the same routes work again.

Two ways of being unreachable, one after the other on the same processes (three
gunicorn masters cost more to start than the rest of the test): stopped (the
port refuses connections: every answer comes at once) and frozen (SIGSTOP:
connections are accepted by the kernel and then nothing answers -- a network
partition, a Redis stuck on its disk -- so only the timeouts end each request).
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from redfile_dev.testing import auth_header

from .helpers import OCTET, assert_file_checksums, error_code, wait_until

PASSWORD = "alice-password-" + "x" * 8
ROOT_PASSWORD = "root-password-" + "y" * 8
CHUNK = 64 * 1024
# The services' Redis settings, and the longest a request may wait for a Redis that does not answer:
# each of the 1 + REDIS_RETRIES attempts of its first Redis command waits at most the connect and
# the socket timeout, with at most 1 s of backoff between attempts (redfile_common.redis_client),
# plus 3 s for the work around it.  A refused connection fails at once; a frozen Redis costs
# (1 + retries) x the socket timeout, 6.3 s here.
REDIS_ENV = {
    "REDIS_CONNECT_TIMEOUT": "1",
    "REDIS_SOCKET_TIMEOUT": "2",
    "REDIS_RETRIES": "2",
    "READINESS_TIMEOUT": "1",
    "GUNICORN_GRACEFUL_TIMEOUT": "1",  # a short shutdown after the test
}
BOUND = (1 + 2) * (1 + 2) + 2 * 1.0 + 3.0
CHEAP_ARGON2 = {"ARGON2_MEMORY_KIB": "1024", "ARGON2_TIME_COST": "1", "ARGON2_PARALLELISM": "1"}


@pytest.fixture
def system(own_redis, gunicorn):
    """Redis of the test's own (AOF on), auth, files and admin on it, a user with a file and an upload in progress."""
    server = own_redis()
    with ThreadPoolExecutor(2) as pool:  # auth and files start side by side; the admin needs their addresses
        starting_auth = pool.submit(
            gunicorn, "auth", server.url, ADMIN_USERS="root", ADMIN_PASSWORD=ROOT_PASSWORD, **CHEAP_ARGON2, **REDIS_ENV
        )
        starting_files = pool.submit(gunicorn, "files", server.url, MAX_CHUNK_BYTES=str(CHUNK), **REDIS_ENV)
        (auth,), (files,) = starting_auth.result(timeout=90), starting_files.result(timeout=90)
    (admin,) = gunicorn("admin", server.url, AUTH_URL=auth.url, FILES_URL=files.url, **REDIS_ENV)

    def login(username, password):
        resp = requests.post(f"{auth.url}/auth/login", json={"username": username, "password": password}, timeout=10)
        assert resp.status_code == 200, resp.text
        return resp.json()

    root = auth_header(login("root", ROOT_PASSWORD)["access_token"])
    created = requests.post(f"{admin.url}/admin/users", headers=root, json={"username": "alice", "password": PASSWORD}, timeout=30)
    assert created.status_code == 201, created.text
    pair = login("alice", PASSWORD)
    alice = auth_header(pair["access_token"])
    small = os.urandom(5000)
    stored = requests.post(f"{files.url}/files", headers=alice, files={"file": ("small.bin", small)}, timeout=10)
    assert stored.status_code == 201, stored.text
    big = os.urandom(2 * CHUNK)
    upload = requests.post(
        f"{files.url}/uploads", headers=alice, json={"name": "big.bin", "total_size": len(big), "chunk_size": CHUNK}, timeout=10
    )
    assert upload.status_code == 201, upload.text
    upload_id = upload.json()["id"]
    put = requests.put(f"{files.url}/uploads/{upload_id}/chunks/0", headers={**alice, **OCTET}, data=big[:CHUNK], timeout=10)
    assert put.status_code == 201, put.text
    return {
        "redis": server,
        "auth": auth,
        "files": files,
        "admin": admin,
        "root": root,
        "alice": alice,
        "refresh": pair["refresh_token"],
        "file_id": stored.json()["id"],
        "small": small,
        "upload_id": upload_id,
        "big": big,
    }


def representative_requests(s: dict) -> list[tuple[str, str, str, dict]]:
    """(name, method, url, requests kwargs): what clients do most, across the three services."""
    auth, files, admin = s["auth"].url, s["files"].url, s["admin"].url
    alice, root, up = s["alice"], s["root"], s["upload_id"]
    return [
        ("login", "POST", f"{auth}/auth/login", {"json": {"username": "alice", "password": PASSWORD}}),
        ("refresh", "POST", f"{auth}/auth/refresh", {"json": {"refresh_token": s["refresh"]}}),
        ("me", "GET", f"{auth}/auth/me", {"headers": alice}),
        ("list files", "GET", f"{files}/files", {"headers": alice}),
        ("download", "GET", f"{files}/files/{s['file_id']}", {"headers": alice}),
        ("file meta", "GET", f"{files}/files/{s['file_id']}/meta", {"headers": alice}),
        ("one-request upload", "POST", f"{files}/files", {"headers": alice, "files": {"file": ("x.bin", b"x" * 100)}}),
        ("text", "POST", f"{files}/texts", {"headers": alice, "json": {"name": "t.txt", "content": "hello"}}),
        ("create upload", "POST", f"{files}/uploads", {"headers": alice, "json": {"name": "n.bin", "total_size": 10}}),
        ("upload chunk", "PUT", f"{files}/uploads/{up}/chunks/1", {"headers": {**alice, **OCTET}, "data": s["big"][CHUNK:]}),
        ("upload status", "GET", f"{files}/uploads/{up}", {"headers": alice}),
        ("complete", "POST", f"{files}/uploads/{up}/complete", {"headers": alice}),
        (
            "seed chunk",
            "POST",
            f"{files}/upload_chunk",
            {"headers": alice, "data": {"chunk_index": "0", "total_chunks": "1"}, "files": {"chunk_data": ("c", b"y" * 100)}},
        ),
        ("quota", "GET", f"{files}/quota", {"headers": alice}),
        ("tus create", "POST", f"{files}/tus/", {"headers": {**alice, "Tus-Resumable": "1.0.0", "Upload-Length": "10"}}),
        ("admin users", "GET", f"{admin}/admin/users", {"headers": root}),
        ("admin create user", "POST", f"{admin}/admin/users", {"headers": root, "json": {"username": "bob", "password": PASSWORD}}),
        ("admin stats", "GET", f"{admin}/admin/stats", {"headers": root}),
        ("admin usage", "GET", f"{admin}/admin/users/alice/usage", {"headers": root}),
        ("admin audit", "GET", f"{admin}/admin/audit", {"headers": root}),
        ("admin files", "GET", f"{admin}/admin/files", {"headers": root}),
    ]


def services(s: dict):
    return [s["auth"], s["files"], s["admin"]]


def ready(s: dict) -> bool:
    return all(requests.get(f"{p.url}/readyz", timeout=BOUND).status_code == 200 for p in services(s))


def call(request: tuple[str, str, str, dict]) -> tuple[str, tuple]:
    """(name, (status, Retry-After, error code, seconds)) of one request with the bound as its timeout."""
    name, method, url, kwargs = request
    started = time.monotonic()
    resp = requests.request(method, url, timeout=BOUND, **kwargs)
    elapsed = time.monotonic() - started
    code = error_code(resp) if resp.status_code >= 400 else None
    return name, (resp.status_code, resp.headers.get("Retry-After"), code, round(elapsed, 2))


def unavailable_everywhere(outcomes: dict) -> dict:
    """The outcomes that are not a 503 service_unavailable with Retry-After within the bound."""
    # Retry-After: 5 for a Redis error, the seconds to the breaker's next probe while it is open (issue 18)
    return {
        k: v
        for k, v in outcomes.items()
        if v[0] != 503 or not str(v[1]).isdigit() or int(v[1]) < 1 or v[2] != "service_unavailable" or v[3] > BOUND
    }


def assert_health_but_not_ready(s: dict) -> None:
    for proc in services(s):
        health = requests.get(f"{proc.url}/healthz", timeout=BOUND)
        assert health.status_code == 200, (proc.service, health.text)
        readiness = requests.get(f"{proc.url}/readyz", timeout=BOUND)
        assert readiness.status_code == 503 and readiness.json()["redis"] == "down", (proc.service, readiness.status_code)


# the frozen phase sends these at once: each waits out its timeouts, so one at a time would take minutes
FROZEN = ["login", "me", "list files", "upload chunk", "download", "admin users", "admin stats"]


def test_redis_down_every_service_answers_503_then_recovers_by_itself(system):
    s = system
    redis_server = s["redis"]

    # -- stopped: the port refuses connections
    redis_server.stop()
    assert_health_but_not_ready(s)
    outcomes = dict(call(request) for request in representative_requests(s))
    assert not unavailable_everywhere(outcomes), unavailable_everywhere(outcomes)

    redis_server.start()  # the same port and data
    wait_until(lambda: ready(s), 30, "every service to be ready again, by itself")
    assert all(proc.proc.poll() is None for proc in services(s))  # nothing was restarted

    after = {name: requests.request(method, url, timeout=BOUND, **kwargs) for name, method, url, kwargs in representative_requests(s)}
    codes = {name: resp.status_code for name, resp in after.items()}
    expected = dict.fromkeys(codes, 200) | {
        "one-request upload": 201,
        "text": 201,
        "create upload": 201,
        "upload chunk": 201,
        "complete": 201,
        "seed chunk": 201,
        "tus create": 201,
        "admin create user": 201,
    }
    assert codes == expected, {n: (r.status_code, r.text[:200]) for n, r in after.items() if r.status_code != expected[n]}
    assert after["download"].content == s["small"]
    # the session asked for no SHA-256: its CRC32C and composite cover the chunk stored before the outage and the one after
    assert_file_checksums(after["complete"].json(), s["big"], CHUNK, with_sha256=False)
    assert requests.get(f"{s['files'].url}/files/{s['upload_id']}", headers=s["alice"], timeout=BOUND).content == s["big"]
    assert after["admin stats"].json()["unavailable"] == []
    r = redis.Redis.from_url(redis_server.url)
    assert r.exists("auth:user:{bob}") and r.exists(f"files:{{{s['upload_id']}}}:meta")
    r.close()

    # -- frozen: connections are accepted and then nothing answers
    os.kill(redis_server.proc.pid, signal.SIGSTOP)
    try:
        assert_health_but_not_ready(s)
        with ThreadPoolExecutor(len(FROZEN)) as pool:
            outcomes = dict(pool.map(call, [request for request in representative_requests(s) if request[0] in FROZEN]))
    finally:
        os.kill(redis_server.proc.pid, signal.SIGCONT)
    assert not unavailable_everywhere(outcomes), unavailable_everywhere(outcomes)

    wait_until(lambda: ready(s), 30, "every service to be ready again after the freeze")
    again = dict(call(request) for request in representative_requests(s) if request[0] in ("login", "list files", "admin users"))
    assert {name: outcome[0] for name, outcome in again.items()} == {"login": 200, "list files": 200, "admin users": 200}, again
