"""Nothing secret reaches a log line or the audit trail.

This module runs a system of its own (the ``make run`` launcher over a password-protected private Redis, in
its own folder), so its log holds only what the module did there, whatever ran before or after. It plants
secrets of every kind — the Redis password, the signing keys, an encryption key, passwords (right and wrong),
access and refresh tokens, share passwords and links, a service token, file and text contents — drives the
flows that handle them, stops the system, and reads everything it wrote: each process's stdout and stderr
(structlog's JSON lines, gunicorn's own lines, the launcher's messages). None of the secrets may be there,
while the request ids and events of those flows must be, so a capture that missed them fails.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests

from redfile_common.settings import parse_keyring
from redfile_common.tokens import Keyring, ServiceTokens
from redfile_dev.redis_server import RedisProcess

from .conftest import System

pytestmark = pytest.mark.timeout(300)

JWT = re.compile(r"eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}")
# A refresh token is secrets.token_urlsafe(32): 43 URL-safe characters. Nothing Redfile logs has that
# shape (request ids and trace ids are hex, family ids 22 characters).
REFRESH_SHAPED = re.compile(r'"[A-Za-z0-9_-]{43}"')
TUS = {"Tus-Resumable": "1.0.0"}


def planted(kind: str) -> str:
    """A secret no other test and no earlier run can have written."""
    return f"{kind}-{secrets.token_hex(12)}"


@dataclass
class Run:
    """What the flows planted and sent, and what the system wrote."""

    secrets: dict[str, str] = field(default_factory=dict)
    # request id -> the service expected to log it
    request_ids: dict[str, str] = field(default_factory=dict)
    username: str = ""
    log: str = ""
    audit: list[dict] = field(default_factory=list)

    def plant(self, name: str, value: str) -> str:
        self.secrets[name] = value
        return value

    def records(self) -> list[dict]:
        return [json.loads(line) for line in self.log.splitlines() if line.startswith("{")]


class Client:
    """HTTP through the gateway; every request carries a fresh X-Request-ID, noted with the service that should log it."""

    def __init__(self, run: Run, base: str, token: str | None = None) -> None:
        self.run = run
        self.base = base
        self.token = token
        self.session = requests.Session()

    def call(self, method: str, path: str, service: str, *, headers: dict | None = None, **kw) -> requests.Response:
        rid = f"hygiene-{uuid.uuid4().hex}"
        self.run.request_ids[rid] = service
        sent = {"X-Request-ID": rid, **({"Authorization": f"Bearer {self.token}"} if self.token else {}), **(headers or {})}
        url = path if path.startswith("http") else self.base + path
        return self.session.request(method, url, headers=sent, timeout=30, **kw)


def plant_pair(run: Run, resp: requests.Response) -> dict:
    """A token pair from a 200 answer, both tokens planted."""
    assert resp.status_code == 200, resp.text
    pair = resp.json()
    n = len(run.secrets)
    run.plant(f"access token {n}", pair["access_token"])
    run.plant(f"refresh token {n}", pair["refresh_token"])
    return pair


def log_in(client: Client, username: str, password: str) -> dict:
    return plant_pair(client.run, client.call("POST", "/auth/login", "auth", json={"username": username, "password": password}))


def drive_accounts(run: Run, system: System) -> Client:
    """Log in, create a user, fail a login, refresh (and replay a used refresh token), change a password, log out."""
    anon = Client(run, system.base)
    admin = Client(run, system.base, log_in(anon, "admin", system.admin_password)["access_token"])
    run.username = f"hyg{secrets.token_hex(4)}"
    first = run.plant("user password", planted("pw"))
    made = admin.call("POST", "/admin/users", "admin", json={"username": run.username, "password": first, "role": "user"})
    assert made.status_code == 201, made.text

    wrong = anon.call(
        "POST", "/auth/login", "auth", json={"username": run.username, "password": run.plant("wrong password", planted("nope"))}
    )
    assert wrong.status_code == 401

    pair = log_in(anon, run.username, first)
    plant_pair(run, anon.call("POST", "/auth/refresh", "auth", json={"refresh_token": pair["refresh_token"]}))
    replayed = anon.call("POST", "/auth/refresh", "auth", json={"refresh_token": pair["refresh_token"]})
    assert replayed.status_code == 401  # reuse: the whole family ends

    user = Client(run, system.base, log_in(anon, run.username, first)["access_token"])
    second = run.plant("new password", planted("pw2"))
    changed = user.call("POST", "/auth/password", "auth", json={"current_password": first, "new_password": second})
    user.token = plant_pair(run, changed)["access_token"]
    assert user.call("GET", "/auth/me", "auth").json()["username"] == run.username

    last = log_in(anon, run.username, second)
    leaving = Client(run, system.base, last["access_token"])
    assert leaving.call("POST", "/auth/logout", "auth", json={"refresh_token": last["refresh_token"]}).status_code == 204
    return user


def drive_contents(run: Run, system: System, user: Client) -> None:
    """Upload and read file contents four ways (one request, chunks, tus, a text), share one with a password."""
    content = run.plant("file content", planted("content")).encode()
    made = user.call("POST", "/files", "files", files={"file": ("plain.txt", content)})
    assert made.status_code == 201, made.text
    file_id = made.json()["id"]
    assert user.call("GET", f"/files/{file_id}", "files").content == content

    chunked = run.plant("chunk content", planted("chunk")).encode()
    fields = {"chunk_index": "0", "total_chunks": "1"}
    sent = user.call("POST", "/upload_chunk", "files", data=fields, files={"chunk_data": ("chunk", chunked)})
    assert sent.status_code in (200, 201), sent.text
    done = user.call(
        "POST", "/upload_complete", "files", json={"file_id": sent.json()["file_id"], "name": "c.txt", "total_size": len(chunked)}
    )
    assert done.status_code == 201, done.text

    tus_bytes = run.plant("tus content", planted("tus")).encode()
    name = base64.b64encode(b"t.txt").decode()
    created = user.call(
        "POST", "/tus/", "files", headers={**TUS, "Upload-Length": str(len(tus_bytes)), "Upload-Metadata": f"filename {name}"}
    )
    assert created.status_code == 201, created.text
    patch_headers = {**TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    patched = user.call("PATCH", created.headers["Location"], "files", headers=patch_headers, data=tus_bytes)
    assert patched.status_code == 204, patched.text

    text = run.plant("text content", planted("text"))
    note = user.call("POST", "/texts", "files", json={"content": text, "name": "note.txt"})
    assert note.status_code == 201, note.text
    assert user.call("GET", f"/texts/{note.json()['id']}", "files").json()["content"] == text

    share_password = run.plant("share password", planted("share"))
    link = user.call("POST", f"/files/{file_id}/shares", "files", json={"password": share_password})
    assert link.status_code == 201, link.text
    path = f"/s/{run.plant('share link token', link.json()['token'])}"
    anon = Client(run, system.base)
    assert anon.call("GET", path, "files").status_code == 401
    wrong = anon.call("GET", path, "files", headers={"X-Share-Password": run.plant("wrong share password", planted("notshare"))})
    assert wrong.status_code == 401
    got = anon.call("GET", path, "files", headers={"X-Share-Password": share_password})
    assert got.status_code == 200 and got.content == content


def drive_service_tokens(run: Run, system: System, dev: dict) -> None:
    """Call the files service's internal API straight with a real service token, and with a forged one."""
    keyring = Keyring(parse_keyring(dev["SERVICE_TOKEN_KEYS"], "SERVICE_TOKEN_KEYS"))
    direct = Client(run, f"http://127.0.0.1:{system.ports['files']}")
    direct.token = run.plant("service token", ServiceTokens(keyring, service_name="admin").mint("files"))
    listed = direct.call("GET", "/internal/files", "files", params={"owner": run.username})
    assert listed.status_code == 200 and len(listed.json()["items"]) == 4, listed.text
    forged = run.plant("forged service token", f"{planted('forged')}.{planted('claims')}.{planted('signature')}")
    direct.token = forged
    assert direct.call("GET", "/internal/files", "files").status_code == 401


def read_audit(run: Run, admin: Client) -> list[dict]:
    items: list[dict] = []
    cursor = None
    for _ in range(100):
        page = admin.call("GET", "/admin/audit", "admin", params={"limit": 200, **({"cursor": cursor} if cursor else {})})
        assert page.status_code == 200, page.text
        items += page.json()["items"]
        cursor = page.json()["next_cursor"]
        if not cursor:
            break
    return items


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Iterator[Run]:
    root: Path = tmp_path_factory.mktemp("hygiene")
    result = Run()
    redis_password = result.plant("redis password", planted("redis"))
    redis = RedisProcess(root / "redis", extra_args=["--requirepass", redis_password])
    redis.start()
    encryption_key = base64.b64encode(secrets.token_bytes(32)).decode()
    system = System(
        root,
        admin_password=result.plant("admin password", planted("admin")),
        env={"REDIS_URL": f"redis://:{redis_password}@127.0.0.1:{redis.port}/0", "ENCRYPTION_KEYS": f"k1:{encryption_key}"},
    )
    result.plant("encryption key", encryption_key)
    try:
        system.start()
        dev = json.loads((system.root / "data" / "dev-secrets.json").read_text())
        result.plant("app secret key", dev["APP_SECRET_KEY"])
        result.plant("unused generated admin password", dev["ADMIN_PASSWORD"])
        for ring in ("USER_TOKEN_KEYS", "SERVICE_TOKEN_KEYS"):
            for key in parse_keyring(dev[ring], ring):
                result.plant(f"{ring} {key.kid}", key.secret.decode())

        user = drive_accounts(result, system)
        drive_contents(result, system, user)
        drive_service_tokens(result, system, dev)
        admin = Client(result, system.base, log_in(Client(result, system.base), "admin", system.admin_password)["access_token"])
        result.audit = read_audit(result, admin)
    finally:
        system.stop()
        redis.stop()
        result.log = system.logs()
    yield result


def test_no_planted_secret_reaches_the_log_or_the_audit_trail(run):
    trail = json.dumps(run.audit)
    for where, text in (("log", run.log), ("audit trail", trail)):
        for name, secret in run.secrets.items():
            assert secret not in text, f"the {name} reached the {where}"
        assert not JWT.search(text), f"a token reached the {where}"
        assert not REFRESH_SHAPED.search(text), f"something shaped like a refresh token reached the {where}"
        assert "argon2id$" not in text, f"a password hash reached the {where}"


def test_the_capture_holds_every_process_and_every_request(run):
    records = run.records()
    # one request line per (request id, service): a service called by another logs the caller's request id too
    requests_logged = {(r["request_id"], r.get("service")): r for r in records if r.get("event") == "request" and "request_id" in r}
    missing = {rid: service for rid, service in run.request_ids.items() if (rid, service) not in requests_logged}
    assert not missing, f"{len(missing)} of {len(run.request_ids)} requests have no log line from the service that answered them"
    for r in (requests_logged[item] for item in run.request_ids.items()):
        assert {"method", "route", "status", "duration_ms", "timestamp"} <= set(r)
    booted = {r.get("service") for r in records if r.get("logger") == "gunicorn.error" and "Booting worker" in r.get("event", "")}
    assert booted >= {"auth", "files", "admin", "gateway"}, "gunicorn's own lines come from every server"
    assert "redfile: using Redis at REDIS_URL" in run.log, "the launcher's stderr"
    assert "Redfile is running" in run.log, "the launcher's stdout"


def test_the_flows_left_their_events_in_the_log_and_the_audit_trail(run):
    events = {(r.get("event"), r.get("service")): r for r in run.records()}
    for event, service in [
        ("login_failed", "auth"),
        ("refresh_token_reuse", "auth"),
        ("security_token_rejected", "files"),
        ("share_created", "files"),
        ("share_password_wrong", "files"),
        ("share_used", "files"),
    ]:
        assert (event, service) in events, f"no {event} from {service}"
    security = [r for r in run.records() if r.get("category") == "security"]
    assert security and all(r["level"] == "warning" for r in security)
    assert any(r["event"] == "login_failed" and r.get("username") == run.username for r in security)
    assert not [r for r in run.records() if r.get("event") == "audit_write_failed"], "every audit entry reached Redis"
    actions = {e["action"] for e in run.audit if e.get("user") == run.username or e.get("target") == run.username}
    assert {"user.created", "login.succeeded", "logout"} <= actions, actions
