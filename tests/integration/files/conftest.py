"""Fixtures for the files service against the private real Redis: the app, users' headers, helpers."""

from __future__ import annotations

import base64
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from redfile_dev.testing import auth_header, connections_in_use, redis_state, service_token, settings_overrides, user_account, user_token
from redfile_files import create_app
from redfile_files.domain import FilesDomain, files_domain
from redfile_files.storage import keys
from redfile_files.storage.files import locate_chunk
from redfile_files.tus import appender as tus_appender

from .tus_helpers import Tus

CHUNK = 64  # small chunks so tests exercise many of them


class LazyAuth:
    """The real auth app over the test's Redis, built on its first request (most tests never ask who a name is)."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.app: Callable[..., Any] | None = None
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        with self.lock:
            if self.app is None:
                from redfile_auth import create_app as create_auth_app

                cheap = {"argon2_time_cost": 1, "argon2_memory_kib": 64, "argon2_parallelism": 1}
                self.app = create_auth_app(**settings_overrides(self.redis_url, admin_password="bootstrap-" + "p" * 12, **cheap))
        return self.app(environ, start_response)


@pytest.fixture
def auth_url(serve, redis_url) -> str:
    """auth on loopback: files asks it (``GET /internal/users/<name>``) who a username is when sharing."""
    return serve(LazyAuth(redis_url))


@pytest.fixture
def make_app(redis_url, auth_url):
    def make(**overrides):
        # no background sweep thread per test app: tests run the sweep themselves
        limits = {"max_chunk_bytes": CHUNK, "max_single_upload_bytes": 256, "max_chunks": 1000, "upload_ttl": 600, "sweep_interval": 0}
        return create_app(**settings_overrides(redis_url, auth_url=auth_url, **{**limits, **overrides}))

    return make


@pytest.fixture
def app(make_app):
    return make_app()


@pytest.fixture
def settings(app):
    return app.extensions["redfile"].settings


@pytest.fixture
def client(app):
    return app.test_client()


def member(settings, r, username: str, role: str = "user") -> dict[str, str]:
    """The headers of a user with an account in auth (its id in the token, as auth mints it)."""
    return auth_header(user_token(settings, r, username, role=role, uid=user_account(r, username, role)))


@pytest.fixture
def alice(settings, redis_client):
    return member(settings, redis_client, "alice")


@pytest.fixture
def bob(settings, redis_client):
    return member(settings, redis_client, "bob")


@pytest.fixture
def admin(settings, redis_client):
    return member(settings, redis_client, "root", role="admin")


@pytest.fixture
def internal(settings):
    return auth_header(service_token(settings, "admin", "files"))


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Api:
    """Small helpers over the test client; every call returns the Flask test response."""

    def __init__(self, client):
        self.client = client

    def chunk(self, headers, index, total, data, file_id=None, **extra):
        body = {"chunk_index": index, "total_chunks": total, "chunk_data": b64(data), **extra}
        if file_id:
            body["file_id"] = file_id
        return self.client.post("/upload_chunk", headers=headers, json=body)

    def complete(self, headers, file_id, size, name="file.bin", mime_type=None):
        body = {"file_id": file_id, "name": name, "total_size": size}
        if mime_type is not None:
            body["mime_type"] = mime_type
        return self.client.post("/upload_complete", headers=headers, json=body)

    def upload(self, headers, data: bytes, name="file.bin", chunk=CHUNK, mime_type=None) -> dict:
        """A whole chunked upload; returns the file JSON."""
        pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)] or [b""]
        file_id = None
        for index, piece in enumerate(pieces):
            resp = self.chunk(headers, index, len(pieces), piece, file_id)
            assert resp.status_code in (200, 201), resp.json
            file_id = resp.json["file_id"]
        resp = self.complete(headers, file_id, len(data), name=name, mime_type=mime_type)
        assert resp.status_code == 201, resp.json
        return resp.json

    # -- upload sessions --------------------------------------------------------
    def create(self, headers, size, name="file.bin", **extra):
        return self.client.post("/uploads", headers=headers, json={"name": name, "total_size": size, **extra})

    def put(self, headers, upload_id, index, data: bytes, **extra_headers):
        return self.client.put(
            f"/uploads/{upload_id}/chunks/{index}", headers={**headers, **extra_headers}, data=data, content_type="application/octet-stream"
        )

    def session(self, headers, data: bytes, name="file.bin", chunk=CHUNK, order=None, **extra) -> dict:
        """A whole upload session, chunks in ``order``; returns the file JSON."""
        created = self.create(headers, len(data), name=name, chunk_size=chunk, **extra)
        assert created.status_code == 201, created.json
        upload = created.json
        for index in order if order is not None else range(upload["total_chunks"]):
            resp = self.put(headers, upload["id"], index, data[index * chunk : (index + 1) * chunk])
            assert resp.status_code in (200, 201), resp.json
        done = self.client.post(f"/uploads/{upload['id']}/complete", headers=headers)
        assert done.status_code == 201, done.json
        return done.json


@pytest.fixture
def api(client):
    return Api(client)


@pytest.fixture
def domain(app) -> FilesDomain:
    with app.app_context():
        return files_domain()


def expire_now(r, user: str, file_id: str) -> None:
    """Make an id due now, as time passing would."""
    r.zadd(keys.due(user), {file_id: 0})


def chunk_at(r, file_id: str, index: int) -> str:
    """The key chunk ``index`` of an id is stored at (its record and the id's layout name it; one that does not exist
    when no record does)."""
    return locate_chunk(r, file_id, index)[0] or keys.chunk_key(file_id, index, "c:none")


def dump(r) -> dict:
    """Every key's type, value and whether it expires: compare two dumps to prove nothing changed.

    The background sweep's own bookkeeping (its lock and walk cursor) is left out: a
    sweeper thread of an app built by an earlier test (with the default
    SWEEP_INTERVAL) may still run in this process and write them at any time.
    """
    sweeper_keys = {keys.SWEEP_LOCK.encode(), keys.GC_CURSOR.encode()}
    return redis_state(r, skip=sweeper_keys.__contains__)


@pytest.fixture
def unchanged(redis_client):
    """``with unchanged(): ...`` asserts Redis holds exactly the same data afterwards."""
    from contextlib import contextmanager

    @contextmanager
    def check():
        before = dump(redis_client)
        yield
        assert dump(redis_client) == before

    return check


@pytest.fixture(params=["in-script", "sent-ahead"])
def tus(request, app, client, redis_client, monkeypatch) -> Iterator[Tus]:
    """The test's tus client, once with each way a chunk's bytes reach Redis: set to its key directly
    (the tests' chunks are small), and as a staged SET sent ahead of the script (``SEND_AHEAD_MIN`` lowered to 1 byte:
    streamed as the body arrives when its length is known and the upload is not encrypted).  Either way, once the
    test's requests are over no staged bytes are left behind, and no connection is held by a SET left unfinished."""
    if request.param == "sent-ahead":
        monkeypatch.setattr(tus_appender, "SEND_AHEAD_MIN", 1)
    yield Tus(client)
    assert list(redis_client.scan_iter(match="files:{*}:s:*", count=1000)) == []
    assert connections_in_use(app.extensions["redfile"].redis) == 0
