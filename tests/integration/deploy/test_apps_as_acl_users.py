"""Each service's real app, connected as its own Redis ACL user, serves its whole API.

The three apps run on loopback HTTP servers (admin reaches auth and files over HTTP, as
deployed) against the Redis loaded with the ACL file.  Any command or key a service needs
but its user lacks would surface as a 5xx here, and is also caught in Redis's ACL LOG,
which must stay empty.
"""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable
from typing import Any

import google_crc32c
import pytest
import requests
from werkzeug.serving import make_server

from redfile_admin import create_app as create_admin
from redfile_auth import create_app as create_auth
from redfile_dev.testing import settings_overrides
from redfile_files import create_app as create_files
from redfile_files.storage import keys

ROOT_PASSWORD = "root-password-for-acl-tests"
CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
# redis-py tries CLIENT SETINFO on connect and ignores a refusal (see users.acl).
IGNORED_LOG_ENTRIES = {"client|setinfo"}


class LateApp:
    """A WSGI app set after its server has a port (the apps need each other's URLs)."""

    app: Callable[..., Any] | None = None

    def __call__(self, environ, start_response):
        assert self.app is not None, "a request before the app was set"
        return self.app(environ, start_response)


@pytest.fixture
def system(acl_redis, ops):
    slots = {name: LateApp() for name in ("auth", "files", "admin")}
    servers, urls = [], {}
    for name, slot in slots.items():
        server = make_server("127.0.0.1", 0, slot, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        urls[name] = f"http://127.0.0.1:{server.server_port}"
    common = {f"{name}_url": url for name, url in urls.items()} | {"admin_users": "root", "service_retries": 0}

    def settings(service: str, **extra) -> dict:
        user = f"redfile-{service}"
        return settings_overrides(acl_redis.url, redis_username=user, redis_password=acl_redis.passwords[user], **common, **extra)

    slots["auth"].app = create_auth(**settings("auth", admin_password=ROOT_PASSWORD, **CHEAP_ARGON2))
    slots["files"].app = create_files(**settings("files"))
    slots["admin"].app = create_admin(**settings("admin"))
    yield urls
    for server in servers:
        server.shutdown()
        server.server_close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def login(urls, username, password) -> dict:
    resp = requests.post(f"{urls['auth']}/auth/login", json={"username": username, "password": password}, timeout=10)
    assert resp.status_code == 200, resp.text
    return resp.json()


def acl_violations(ops) -> list[dict]:
    return [e for e in ops.acl_log() if e.get("object") not in IGNORED_LOG_ENTRIES]


def test_every_service_is_ready_as_its_own_user(system, ops):
    for name, url in system.items():
        resp = requests.get(f"{url}/readyz", timeout=10)
        assert resp.status_code == 200, (name, resp.text)
        assert resp.json()["redis"] == "up"
    assert acl_violations(ops) == []


def test_auth_sessions_as_the_auth_user(system, ops):
    bad = requests.post(f"{system['auth']}/auth/login", json={"username": "root", "password": "wrong-password"}, timeout=10)
    assert bad.status_code == 401  # the failed-login counters were written
    pair = login(system, "root", ROOT_PASSWORD)
    me = requests.get(f"{system['auth']}/auth/me", headers=bearer(pair["access_token"]), timeout=10)
    assert me.status_code == 200 and me.json()["role"] == "admin"
    refreshed = requests.post(f"{system['auth']}/auth/refresh", json={"refresh_token": pair["refresh_token"]}, timeout=10)
    assert refreshed.status_code == 200, refreshed.text  # the rotation Lua script ran
    replay = requests.post(f"{system['auth']}/auth/refresh", json={"refresh_token": pair["refresh_token"]}, timeout=10)
    assert replay.status_code == 401  # reuse revokes the family ...
    revoked = bearer(refreshed.json()["access_token"])
    for service in ("auth", "files"):  # ... and its access tokens, read by each service as its own user
        path = "/auth/me" if service == "auth" else "/files"
        assert requests.get(f"{system[service]}{path}", headers=revoked, timeout=10).status_code == 401
    token = login(system, "root", ROOT_PASSWORD)["access_token"]
    out = requests.post(f"{system['auth']}/auth/logout", headers=bearer(token), timeout=10)
    assert out.status_code == 204
    assert requests.get(f"{system['auth']}/auth/me", headers=bearer(token), timeout=10).status_code == 401
    assert acl_violations(ops) == []


def test_files_and_admin_flows_as_their_own_users(system, ops):
    root = bearer(login(system, "root", ROOT_PASSWORD)["access_token"])
    created = requests.post(
        f"{system['admin']}/admin/users",
        json={"username": "alice", "password": "alice-password-1", "role": "user"},
        headers=root,
        timeout=10,
    )
    assert created.status_code == 201, created.text
    assert requests.get(f"{system['admin']}/admin/users", headers=root, timeout=10).json()["items"]
    alice = bearer(login(system, "alice", "alice-password-1")["access_token"])
    files = system["files"]

    # a chunked upload, out of order, with a retried chunk: both Lua scripts run
    data = b"hello ACL world " * 10
    parts = [data[:64], data[64:128], data[128:]]
    first = requests.post(
        f"{files}/upload_chunk",
        json={"chunk_index": 2, "total_chunks": 3, "chunk_data": base64.b64encode(parts[2]).decode()},
        headers=alice,
        timeout=10,
    )
    assert first.status_code in (200, 201), first.text
    file_id = first.json()["file_id"]
    for index in (0, 1, 1):
        resp = requests.post(
            f"{files}/upload_chunk",
            json={"file_id": file_id, "chunk_index": index, "total_chunks": 3, "chunk_data": base64.b64encode(parts[index]).decode()},
            headers=alice,
            timeout=10,
        )
        assert resp.status_code in (200, 201), resp.text
    done = requests.post(
        f"{files}/upload_complete",
        json={"file_id": file_id, "name": "acl.txt", "mime_type": "text/plain", "total_size": len(data)},
        headers=alice,
        timeout=10,
    )
    assert done.status_code == 201, done.text
    assert done.json()["crc32c"] == f"{google_crc32c.value(data):08x}" and done.json()["sha256"] is None  # seed uploads: no SHA-256

    download = requests.get(f"{files}/files/{file_id}", headers=alice, timeout=10)
    assert download.status_code == 200 and download.content == data
    listing = requests.get(f"{files}/files", headers=alice, timeout=10)
    assert listing.status_code == 200, listing.text
    assert listing.json()["items"][0]["id"] == file_id
    renamed = requests.post(f"{files}/files/{file_id}/rename", json={"new_name": "renamed.txt"}, headers=alice, timeout=10)
    assert renamed.status_code == 200, renamed.text
    text = requests.post(f"{files}/texts", json={"name": "todo.txt", "content": "buy milk"}, headers=alice, timeout=10)
    assert text.status_code == 201, text.text
    assert requests.get(f"{files}/texts/{text.json()['id']}", headers=alice, timeout=10).json()["content"] == "buy milk"
    small = requests.post(f"{files}/files", files={"file": ("s.bin", b"small")}, headers=alice, timeout=10)
    assert small.status_code == 201, small.text
    gone = requests.delete(f"{files}/files/{small.json()['id']}", headers=alice, timeout=10)
    assert gone.status_code == 204

    # admin over the internal APIs of auth and files
    listed = requests.get(f"{system['admin']}/admin/files", params={"owner": "alice"}, headers=root, timeout=10)
    assert listed.status_code == 200 and {f["id"] for f in listed.json()["items"]} >= {file_id}
    counts = {"files": 2, "bytes_stored": len(data) + len("buy milk"), "active_uploads": 0}
    stats = requests.get(f"{system['admin']}/admin/stats", headers=root, timeout=10)
    assert stats.status_code == 200, stats.text
    assert stats.json()["unavailable"] == [] and stats.json()["users"] == {"total": 2} and stats.json()["files"] == counts
    usage = requests.get(f"{system['admin']}/admin/users/alice/usage", headers=root, timeout=10)
    assert usage.status_code == 200 and usage.json()["username"] == "alice", usage.text
    assert {k: usage.json()[k] for k in counts} == counts
    disabled = requests.patch(f"{system['admin']}/admin/users/alice", json={"active": False}, headers=root, timeout=10)
    assert disabled.status_code == 200, disabled.text
    # files reads the token state auth just bumped: alice's token stops working at once
    assert requests.get(f"{files}/files", headers=alice, timeout=10).status_code == 401
    deleted = requests.delete(f"{system['admin']}/admin/users/alice", headers=root, timeout=10)
    assert deleted.status_code == 204, deleted.text
    assert ops.exists(f"files:meta:{{{file_id}}}") == 0
    names = {c["name"] for c in ops.client_list()}
    assert {"redfile-auth", "redfile-files", "redfile-admin"} <= names  # CLIENT SETNAME went through
    assert acl_violations(ops) == []


def test_the_files_sweep_runs_as_the_files_user(acl_redis, ops):
    # The background sweep (SCAN, the reconciler, the walk of the global index) runs in a
    # thread, not a request: run one round as the files user, with work to do.
    from redfile_common.app import domain_of
    from redfile_dev.testing import auth_header, user_token
    from redfile_files.domain import FilesDomain
    from redfile_files.maintenance.sweeper import Sweeper
    from redfile_files.storage.records import Stats

    app = create_files(
        **settings_overrides(
            acl_redis.url, redis_username="redfile-files", redis_password=acl_redis.passwords["redfile-files"], sweep_interval=0
        )
    )
    client = app.test_client()
    domain = domain_of(FilesDomain, app)
    alice = auth_header(user_token(app.extensions["redfile"].settings, ops, "alice"))
    assert client.post("/texts", headers=alice, json={"name": "kept.txt", "content": "kept"}).status_code == 201
    left = client.post("/uploads", headers=alice, json={"name": "left.bin", "total_size": 10}).json["id"]
    for key in ops.keys(f"files:{{{left}}}:*"):
        ops.delete(key)  # as if the upload's deadline had passed
    ops.zadd(keys.due("alice"), {left: 0})
    assert Sweeper(domain.storage.lifecycle, domain.storage.ledger, interval=60).run_once() == 1
    assert domain.catalogue.stats() == Stats(files=1, bytes_stored=4, active_uploads=0)
    assert domain.catalogue.stats("alice") == Stats(files=1, bytes_stored=4, active_uploads=0)
    assert acl_violations(ops) == []


def test_the_helm_test_script_passes_against_the_real_services(system, ops):
    # helm/redfile/files/tests/smoke.py is what `helm test` runs in the cluster.
    import os
    import subprocess
    import sys

    from .conftest import ROOT

    env = {
        **os.environ,
        "AUTH_URL": system["auth"],
        "FILES_URL": system["files"],
        "SMOKE_USERNAME": "root",
        "SMOKE_PASSWORD": ROOT_PASSWORD,
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "helm" / "redfile" / "files" / "tests" / "smoke.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "smoke: ok" in done.stdout
    assert acl_violations(ops) == []
