"""Hostile input: one explicit list, each input sent to the endpoints it concerns, refused and nothing stored.

Every case of ``CASES`` is one request to the running apps (auth, files and admin,
in process, on the private real Redis; admin calls the real auth and files apps
over loopback HTTP).  Each must be answered with a 4xx in the one JSON error shape
(``{"error": {"code", "message"}}``, the code from ``CATALOGUE`` with its status),
with the code the case names, and must leave Redis exactly as it was: every key
is compared before and after (``SCAN``, ``TYPE`` and the value read by type --
not ``DUMP``, whose bytes follow a hash table's internal order; TTLs are left out,
since they tick).  The cases of ``WIRE_CASES`` need what a test client cannot
send (Content-Length lies, raw bytes in the request line and headers, headers
over gunicorn's limits) and go over a raw socket to real gunicorn processes; a
request gunicorn itself refuses (over its header limits, not HTTP) gets its own
4xx page, not the JSON shape, and those cases check the 4xx and Redis only.

Keys a case may change, each named in the case and justified there:

* ``auth:ratelimit:ip:*`` and ``rf:audit`` for a login that reaches the password
  check: a failed login is counted (the brute-force limit) and audited by design.
* ``files:{l:*}:pwfail``, ``files:{l:*}:pwfail:<client>`` and ``rf:audit`` for a wrong
  share-link password: counted (the link's and the client's guessing limits) and audited by design.

And, for every case, the background sweep's own bookkeeping
(``files:{all}:sweep-lock``, ``files:{all}:gc-cursor``): a files app built by an
earlier test in this process may still run its sweeper thread against this Redis.

Range headers are the one family that is not refused: RFC 9110 lets a server
ignore a Range it does not serve (several ranges, bad syntax), so those cases
must answer the whole file (200), exactly the bytes asked for (206) or 416 with
the error shape -- never a 5xx, never wrong bytes -- and store nothing.
"""

from __future__ import annotations

import base64
import fnmatch
import json
import socket
import threading
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import pytest
import redis
from werkzeug.serving import make_server

from redfile_auth.domain import AuthDomain
from redfile_common.app import domain_of
from redfile_common.errors import CATALOGUE
from redfile_dev.testing import ServiceProcess, auth_header, restore_state, service_token, settings_overrides, user_token

from .cluster_aware import connect, flush

ADMIN_PASSWORD = "admin-password-1"
PASSWORD = "password-123"
LINK_PASSWORD = "link-password-1"
CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
CHUNK = 64  # the files apps' MAX_CHUNK_BYTES here, so "too large" is cheap to send
FILES_LIMITS = {"max_chunk_bytes": CHUNK, "max_single_upload_bytes": 256, "max_chunks": 1000, "upload_ttl": 600, "sweep_interval": 0}
SWEEPER_KEYS = {b"files:{all}:sweep-lock", b"files:{all}:gc-cursor"}
# A failed login is counted per address and audited: that is the brute-force defence, not a leak.
LOGIN_FAILURE = ("auth:ratelimit:ip:*", "rf:audit")
# A wrong share-link password is counted on the link and audited: the link's guessing limit.
LINK_PASSWORD_FAILURE = ("files:{l:*}:pwfail", "files:{l:*}:pwfail:*", "rf:audit")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


# -- Redis, before and after ----------------------------------------------------------
def snapshot(r: redis.Redis) -> list[tuple[bytes, int, bytes]]:
    # a key that expires between SCAN and DUMP dumps as None: there is nothing of it to restore
    return [(key, max(r.pttl(key), 0), dumped) for key in r.scan_iter(count=1000) if (dumped := r.dump(key)) is not None]


def restore(r: redis.Redis, state) -> None:
    restore_state(r, state)


def value(r: redis.Redis, key: bytes, kind: bytes):
    """A key's value in a canonical form (a hashtable's DUMP follows its internal order, which reads may change)."""
    if kind == b"string":
        return r.get(key)
    if kind == b"hash":
        return sorted(r.hgetall(key).items())
    if kind == b"set":
        return sorted(r.smembers(key))
    if kind == b"zset":
        return r.zrange(key, 0, -1, withscores=True)
    if kind == b"list":
        return r.lrange(key, 0, -1)
    if kind == b"stream":
        return r.xrange(key)
    return r.dump(key)


def contents(r: redis.Redis) -> dict[bytes, tuple[bytes, Any]]:
    """Every key's type and value, TTLs left out (they tick): equal dicts mean nothing was stored, changed or deleted."""
    out = {}
    for key in r.scan_iter(count=1000):
        if key not in SWEEPER_KEYS:
            kind = r.type(key)
            assert isinstance(kind, bytes)  # the client does not decode replies
            out[key] = (kind, value(r, key, kind))
    return out


def assert_unchanged(before: dict, after: dict, may_change: tuple[str, ...] = ()) -> None:
    changed = sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))
    unexpected = [k for k in changed if not any(fnmatch.fnmatchcase(k.decode("utf-8", "replace"), p) for p in may_change)]
    assert not unexpected, f"Redis changed: {[k.decode('utf-8', 'replace') for k in unexpected]}"


def assert_refused(status: int, body: bytes, content_type: str, case) -> None:
    assert 400 <= status < 500, f"{case.id}: {status} {body[:300]!r}"
    assert content_type.split(";")[0].strip() == "application/json", f"{case.id}: {content_type} {body[:300]!r}"
    doc = json.loads(body)
    assert isinstance(doc, dict) and set(doc) == {"error"}, doc
    err = doc["error"]
    assert set(err) <= {"code", "message", "details"}, err
    assert isinstance(err["message"], str) and err["message"], err
    # tus answers a checksum mismatch with its own 460 (the protocol's), with the catalogue's code
    catalogue_status = 460 if (status, err["code"]) == (460, "checksum_mismatch") else CATALOGUE.get(err["code"], (None,))[0]
    assert err["code"] in CATALOGUE and catalogue_status == status, f"{case.id}: {status} {err}"
    assert (status, err["code"]) == (case.status, case.code), f"{case.id}: got {status} {err}"


# -- the running apps -------------------------------------------------------------------
class LateApp:
    """A WSGI slot served before its app exists: the apps need each other's URLs."""

    app: Callable[..., Any] | None = None

    def __call__(self, environ, start_response):
        assert self.app is not None, "the app is set before the first request"
        return self.app(environ, start_response)


class ArgonCalls:
    """Counts the auth service's Argon2 hash and verify calls (a proxy around its PasswordHasher)."""

    def __init__(self, hasher) -> None:
        self._hasher = hasher
        self.calls = 0

    def __getattr__(self, name):
        attr = getattr(self._hasher, name)
        if name in ("hash", "verify"):

            def counted(*args, **kwargs):
                self.calls += 1
                return attr(*args, **kwargs)

            return counted
        return attr


@dataclass
class Env:
    r: redis.Redis
    clients: dict[str, Any]
    headers: dict[str, dict[str, str]]
    ids: dict[str, str]
    state: list
    argon: ArgonCalls
    redis_url: str
    settings: Any

    def reset(self) -> None:
        restore(self.r, self.state)

    def auth(self, as_: str) -> dict[str, str]:
        """The caller's headers; service tokens are minted per request (they live 30 s)."""
        if as_.endswith("-svc"):
            return auth_header(service_token(self.settings, "admin", as_.removesuffix("-svc")))
        return self.headers[as_]


@pytest.fixture(scope="module")
def env(redis_server):
    from redfile_admin import create_app as create_admin
    from redfile_auth import create_app as create_auth
    from redfile_files import create_app as create_files

    r = connect(redis_server.url)
    flush(r)
    servers = []

    def serve(wsgi) -> str:
        server = make_server("127.0.0.1", 0, wsgi, threaded=True)
        threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    auth_slot, files_slot = LateApp(), LateApp()
    urls = {"auth_url": serve(auth_slot), "files_url": serve(files_slot)}
    url = redis_server.url
    auth = auth_slot.app = create_auth(
        **settings_overrides(url, **urls, admin_users="admin", admin_password=ADMIN_PASSWORD, **CHEAP_ARGON2)
    )
    files = files_slot.app = create_files(**settings_overrides(url, **urls, **FILES_LIMITS))
    admin = create_admin(**settings_overrides(url, **urls))
    settings = files.extensions["redfile"].settings
    clients = {"auth": auth.test_client(), "files": files.test_client(), "admin": admin.test_client()}
    svc = auth_header(service_token(settings, "admin", "auth"))
    for name in ("alice", "bob"):
        created = clients["auth"].post("/internal/users", headers=svc, json={"username": name, "password": PASSWORD, "role": "user"})
        assert created.status_code == 201, created.json
    login = clients["auth"].post("/auth/login", json={"username": "alice", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert login.status_code == 200
    alice = auth_header(login.json["access_token"])  # a real session: auth minted it
    bob = auth_header(user_token(settings, r, "bob"))
    headers = {"alice": alice, "root": auth_header(user_token(settings, r, "admin", role="admin")), "none": {}}

    f = clients["files"]

    def made(resp) -> dict:
        assert resp.status_code == 201, resp.get_data(as_text=True)
        return resp.json

    stored = made(f.post("/files", headers=alice, json={"name": "kept.txt", "mime_type": "text/plain", "data": b64(b"stored bytes")}))
    text = made(f.post("/texts", headers=alice, json={"name": "todo.txt", "content": "buy milk"}))
    upload = made(f.post("/uploads", headers=alice, json={"name": "up.bin", "total_size": 2 * CHUNK, "chunk_size": CHUNK}))
    seed = made(f.post("/upload_chunk", headers=alice, json={"chunk_index": 0, "total_chunks": 3, "chunk_data": b64(b"first")}))
    link = made(f.post(f"/files/{stored['id']}/shares", headers=alice, json={}))
    locked = made(f.post(f"/files/{stored['id']}/shares", headers=alice, json={"password": LINK_PASSWORD}))
    theirs = made(f.post("/files", headers=bob, json={"name": "bob.txt", "data": b64(b"from bob")}))
    made(f.post(f"/files/{theirs['id']}/recipients", headers=bob, json={"username": "alice"}))
    tus = f.post("/tus/", headers={**alice, "Tus-Resumable": "1.0.0", "Upload-Length": "10"})
    assert tus.status_code == 201
    ids = {
        "file": stored["id"],
        "text": text["id"],
        "upload": upload["id"],
        "seed": seed["file_id"],
        "token": link["token"],
        "locked": locked["token"],
        "share": link["id"],
        "theirs": theirs["id"],
        "tus": tus.headers["Location"].rsplit("/", 1)[1],
    }
    passwords = domain_of(AuthDomain, auth).users.passwords
    argon = ArgonCalls(passwords.hasher)
    passwords.hasher = argon  # type: ignore[assignment]  # counts the calls, then hands them on
    yield Env(r, clients, headers, ids, snapshot(r), argon, url, settings)
    for server in servers:
        server.shutdown()
        server.server_close()
    r.close()


# -- the cases ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    id: str
    service: str  # auth | files | admin
    method: str
    path: str  # may name seeded ids: {file} {text} {upload} {seed} {token} {locked} {share} {theirs} {tus}
    as_: str = "alice"  # alice | root | auth-svc | files-svc | none
    status: int = 400
    code: str = "bad_request"
    kw: dict = field(default_factory=dict)  # json=, data=, headers=, content_type=, query_string=
    may_change: tuple[str, ...] = ()
    no_argon2: bool = False  # the request must not cost an Argon2 hash or verify


def raw_json(text: str | bytes) -> dict:
    return {"data": text, "content_type": "application/json"}


def multipart(*parts: tuple[bytes, bytes | None, bytes]) -> dict:
    """A multipart/form-data body built byte by byte: (field name, filename or None, content)."""
    out = b""
    for name, filename, content in parts:
        disposition = b'form-data; name="' + name + b'"' + (b'; filename="' + filename + b'"' if filename is not None else b"")
        out += b"--XyZ\r\nContent-Disposition: " + disposition + b"\r\nContent-Type: application/octet-stream\r\n\r\n" + content + b"\r\n"
    return {"data": out + b"--XyZ--\r\n", "content_type": "multipart/form-data; boundary=XyZ"}


def tus_headers(**extra: str) -> dict:
    return {"headers": {"Tus-Resumable": "1.0.0", **extra}}


# 1. File names: path traversal, absolute paths, NUL and control characters, bidi overrides,
#    overlong, only dots or spaces, lone surrogates, invalid UTF-8 (in a multipart filename / a form field).
NAMES = {
    "traversal": "../../etc/passwd",
    "backslash-traversal": "..\\..\\x",
    "absolute": "/etc/passwd",
    "windows-absolute": "C:\\Windows\\win.ini",
    "unc": "\\\\server\\share",
    "nul": "nul\x00byte.txt",
    "only-nul": "\x00",
    "bell": "bell\x07",
    "ansi-escape": "esc\x1b[31mred",
    "newline": "new\nline",
    "carriage-return": "cr\rx",
    "delete": "del\x7fx",
    "c1-nel": "nel\x85x",
    "rtl-override": "invoice\u202efdp.exe",
    "isolate": "x\u2066y",
    "line-separator": "x\u2028y",
    "overlong-ascii": "x" * 256,
    "overlong-utf8": "é" * 128,
    "overlong-emoji": "\U0001f600" * 64,
    "dot": ".",
    "dotdot": "..",
    "three-dots": "...",
    "dots-and-spaces": ". .",
    "space": " ",
    "spaces": "   ",
    "leading-space": " x",
    "trailing-space": "x ",
    "empty": "",
    "replacement-char": "bad\ufffdbytes",
}


def name_cases() -> list[Case]:
    cases = []
    for label, name in NAMES.items():
        targets: list[tuple[str, str, str, dict]] = [
            ("complete", "POST", "/upload_complete", {"json": {"file_id": "{seed}", "name": name, "total_size": 5}}),
            ("create-upload", "POST", "/uploads", {"json": {"name": name, "total_size": 10}}),
            ("file-json", "POST", "/files", {"json": {"name": name, "data": b64(b"x")}}),
            ("file-form-name", "POST", "/files", multipart((b"file", b"f.txt", b"x"), (b"name", None, name.encode()))),
            ("text", "POST", "/texts", {"json": {"name": name, "content": "x"}}),
            ("rename", "POST", "/files/{file}/rename", {"json": {"new_name": name}}),
            ("patch", "PATCH", "/files/{file}", {"json": {"name": name}}),
            ("send", "POST", "/send/bob", {"json": {"name": name, "data": b64(b"x")}}),
            ("zip", "POST", "/files/zip", {"json": {"file_ids": ["{file}"], "name": name}}),
            ("tus-metadata", "POST", "/tus/", tus_headers(**{"Upload-Length": "10", "Upload-Metadata": f"filename {b64(name.encode())}"})),
        ]
        # A filename the Content-Disposition header can carry as it is.  Not a backslash: the header's
        # quoted-string reads "\\." as ".", so the server never sees one ("..\\..\\x" arrives as "....x").
        if name and not set(name) & set('\r\n"\\'):
            targets.append(("multipart-filename", "POST", "/files", multipart((b"file", name.encode(), b"x"))))
        for target, method, path, kw in targets:
            if name == "" and target in ("file-form-name", "text", "tus-metadata"):
                continue  # no name there means "the default name" (the part's filename, snippet-..., upload-...)
            cases.append(Case(f"name-{label}-{target}", "files", method, path, code="invalid_name", kw=kw))
    # the one way a JSON string holds a lone surrogate: an escape
    for target, method, path, body in (
        ("create-upload", "POST", "/uploads", '{"name": "a\\ud800b", "total_size": 10}'),
        ("text", "POST", "/texts", '{"name": "a\\udfffb", "content": "x"}'),
        ("text-content", "POST", "/texts", '{"name": "a.txt", "content": "x\\ud800"}'),
        ("rename", "POST", "/files/{file}/rename", '{"new_name": "\\ud83d"}'),
        ("file-json", "POST", "/files", '{"name": "\\udc00.txt", "data": "eA=="}'),
    ):
        cases.append(Case(f"name-lone-surrogate-{target}", "files", method, path, code="invalid_json", kw=raw_json(body)))
    # invalid UTF-8 where a name travels as bytes: a multipart filename or form field, tus metadata
    for label, raw in (("ff", b"\xff\xfe.txt"), ("overlong-slash", b"..\xc0\xaf..\xc0\xafetc"), ("cesu-surrogate", b"\xed\xa0\x80.txt")):
        cases += [
            # the parser does not take a part whose filename is not UTF-8 as a file: "file" is missing
            Case(
                f"name-utf8-{label}-multipart-filename",
                "files",
                "POST",
                "/files",
                status=422,
                code="validation_error",
                kw=multipart((b"file", raw, b"x")),
            ),
            Case(
                f"name-utf8-{label}-form-field",
                "files",
                "POST",
                "/files",
                code="invalid_name",
                kw=multipart((b"file", b"f.txt", b"x"), (b"name", None, raw)),
            ),
            Case(
                f"name-utf8-{label}-tus-metadata",
                "files",
                "POST",
                "/tus/",
                kw=tus_headers(**{"Upload-Length": "10", "Upload-Metadata": f"filename {b64(raw)}"}),
            ),
        ]
    return cases


# 2. Invalid UTF-8 and lone surrogates in JSON bodies, URLs and headers.
# 1b. Folders: relative, empty or dot segments, a trailing slash, the names above as a segment, too deep, too long.
FOLDERS = {
    "relative": "projects/2026",
    "empty": "",
    "double-slash": "/a//b",
    "trailing-slash": "/a/",
    "dotdot-segment": "/a/../b",
    "dot-segment": "/a/./b",
    "backslash": "/a\\b",
    "nul": "/a\x00b",
    "newline": "/a\nb",
    "rtl-override": "/invoice\u202efdp",
    "invisible-segment": "/\u200b",
    "leading-space-segment": "/ a",
    "replacement-char": "/bad\ufffd",
    "too-deep": "/x" * 33,
    "too-long": "/" + "a" * 1024,
}


def folder_cases() -> list[Case]:
    cases = []
    for label, folder in FOLDERS.items():
        targets: list[tuple[str, str, str, dict]] = [
            ("complete", "POST", "/upload_complete", {"json": {"file_id": "{seed}", "name": "f.txt", "total_size": 5, "folder": folder}}),
            ("create-upload", "POST", "/uploads", {"json": {"name": "f.txt", "total_size": 10, "folder": folder}}),
            ("file-json", "POST", "/files", {"json": {"name": "f.txt", "data": b64(b"x"), "folder": folder}}),
            ("text", "POST", "/texts", {"json": {"content": "x", "folder": folder}}),
            ("patch", "PATCH", "/files/{file}", {"json": {"folder": folder}}),
        ]
        if "\x00" not in folder:
            targets.append(("file-form", "POST", "/files", multipart((b"file", b"f.txt", b"x"), (b"folder", None, folder.encode()))))
            targets.append(
                (
                    "tus-metadata",
                    "POST",
                    "/tus/",
                    tus_headers(**{"Upload-Length": "10", "Upload-Metadata": f"folder {b64(folder.encode())}"}),
                )
            )
        for target, method, path, kw in targets:
            if folder == "" and target == "tus-metadata":
                continue  # an empty metadata value is no value: the root, as an empty filename is the default name
            cases.append(Case(f"folder-{label}-{target}", "files", method, path, code="invalid_folder", kw=kw))
    return cases


def utf8_cases() -> list[Case]:
    bad_bodies = {
        "ff": b'{"name": "\xff\xfe", "content": "x"}',
        "overlong": b'{"name": "\xc0\xaf", "content": "x"}',
        "cesu": b'{"name": "\xed\xa0\x80", "content": "x"}',
        "truncated": b'{"name": "\xe2\x82", "content": "x"}',
    }
    cases = []
    for label, body in bad_bodies.items():
        cases += [
            Case(f"json-utf8-{label}-texts", "files", "POST", "/texts", code="invalid_json", kw=raw_json(body)),
            Case(
                f"json-utf8-{label}-uploads",
                "files",
                "POST",
                "/uploads",
                code="invalid_json",
                kw=raw_json(body.replace(b'"content": "x"', b'"total_size": 1')),
            ),
            Case(
                f"json-utf8-{label}-login",
                "auth",
                "POST",
                "/auth/login",
                as_="none",
                code="invalid_json",
                kw=raw_json(body.replace(b'"name"', b'"username"').replace(b'"content": "x"', b'"password": "password-123"')),
            ),
            Case(
                f"json-utf8-{label}-create-user",
                "auth",
                "POST",
                "/internal/users",
                as_="auth-svc",
                code="invalid_json",
                kw=raw_json(body.replace(b'"name"', b'"username"').replace(b'"content": "x"', b'"password": "password-123"')),
            ),
            Case(
                f"json-utf8-{label}-admin-user",
                "admin",
                "POST",
                "/admin/users",
                as_="root",
                code="invalid_json",
                kw=raw_json(body.replace(b'"name"', b'"username"').replace(b'"content": "x"', b'"password": "password-123"')),
            ),
            Case(
                f"json-utf8-{label}-share-password",
                "files",
                "POST",
                "/files/{file}/shares",
                code="invalid_json",
                kw=raw_json(body.replace(b'"name"', b'"password"').replace(b', "content": "x"', b"")),
            ),
        ]
    for label, service, path, as_, text in (
        ("login-username", "auth", "/auth/login", "none", '{"username": "\\ud800", "password": "password-123"}'),
        ("login-password", "auth", "/auth/login", "none", '{"username": "alice", "password": "password-\\udfff"}'),
        ("create-user", "auth", "/internal/users", "auth-svc", '{"username": "eve", "password": "\\ud800\\ud800\\ud800\\ud800"}'),
        ("admin-user", "admin", "/admin/users", "root", '{"username": "eve\\udc00", "password": "password-123"}'),
        ("share-password", "files", "/files/{file}/shares", "alice", '{"password": "\\ud800"}'),
    ):
        cases.append(Case(f"json-lone-surrogate-{label}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json(text)))
    # %ff (and a lone surrogate, %ed%a0%80) in the URL: decoded with replacement, it names nothing
    for enc in ("%ff", "%ed%a0%80", "%c0%af"):
        cases += [
            Case(f"url-{enc}-file", "files", "GET", f"/files/{enc}", status=404, code="file_not_found"),
            Case(f"url-{enc}-meta", "files", "GET", f"/files/{enc}/meta", status=404, code="file_not_found"),
            Case(f"url-{enc}-delete", "files", "DELETE", f"/files/{enc}", status=404, code="file_not_found"),
            Case(
                f"url-{enc}-rename",
                "files",
                "POST",
                f"/files/{enc}/rename",
                status=404,
                code="file_not_found",
                kw={"json": {"new_name": "x"}},
            ),
            Case(f"url-{enc}-text", "files", "GET", f"/texts/{enc}", status=404, code="file_not_found"),
            Case(f"url-{enc}-upload", "files", "GET", f"/uploads/{enc}", status=404, code="upload_not_found"),
            Case(f"url-{enc}-chunk", "files", "PUT", f"/uploads/{enc}/chunks/0", status=404, code="upload_not_found", kw={"data": b"x"}),
            Case(f"url-{enc}-link", "files", "GET", f"/s/{enc}", as_="none", status=404, code="share_not_found"),
            Case(f"url-{enc}-revoke", "files", "DELETE", f"/shares/{enc}", status=404, code="share_not_found"),
            Case(f"url-{enc}-tus", "files", "HEAD", f"/tus/{enc}", status=404, code="upload_not_found", kw=tus_headers()),
            Case(f"url-{enc}-cursor", "files", "GET", f"/files?cursor={enc}", status=422, code="validation_error"),
            Case(f"url-{enc}-user", "auth", "GET", f"/internal/users/{enc}", as_="auth-svc", status=404, code="user_not_found"),
            Case(
                f"url-{enc}-user-cursor",
                "auth",
                "GET",
                f"/internal/users?cursor={enc}",
                as_="auth-svc",
                status=422,
                code="validation_error",
            ),
            Case(f"url-{enc}-admin-user", "admin", "GET", f"/admin/users/{enc}", as_="root", status=404, code="user_not_found"),
            Case(f"url-{enc}-admin-delete", "admin", "DELETE", f"/admin/users/{enc}", as_="root", status=404, code="user_not_found"),
            Case(
                f"url-{enc}-quota",
                "files",
                "PUT",
                f"/internal/owners/{enc}/quota",
                as_="files-svc",
                status=422,
                code="validation_error",
                kw={"json": {"quota_bytes": 1}},
            ),
        ]
    # headers are ISO-8859-1 on the wire: \xff arrives as a byte that is not UTF-8
    cases += [
        Case(
            "header-ff-authorization",
            "files",
            "GET",
            "/files",
            status=401,
            code="invalid_token",
            as_="none",
            kw={"headers": {"Authorization": "Bearer \xff\xfe"}},
        ),
        Case(
            "header-ff-checksum",
            "files",
            "PUT",
            "/uploads/{upload}/chunks/0",
            status=422,
            code="validation_error",
            kw={"data": b"x" * CHUNK, "headers": {"X-Checksum-SHA256": "\xff" * 64}},
        ),
        Case(
            "header-ff-share-password",
            "files",
            "GET",
            "/s/{locked}",
            as_="none",
            status=401,
            code="share_password_required",
            kw={"headers": {"X-Share-Password": "\xff\xfe"}},
            may_change=LINK_PASSWORD_FAILURE,
        ),
        Case(
            "header-ff-tus-metadata-key",
            "files",
            "POST",
            "/tus/",
            kw=tus_headers(**{"Upload-Length": "1", "Upload-Metadata": "fil\xffe eA=="}),
        ),
    ]
    return cases


# 3. Chunk indices and sizes, declared sizes, expiries, quotas: negative, huge, not integers.
ABSURD_NUMBERS = {
    "minus-one": "-1",
    "two-pow-63": str(2**63),
    "huge": "1" + "0" * 400,
    "inf": "1e309",
    "fraction": "1.5",
    # "10.0" is an integer, as JSON Schema counts them: accepted (tests/integration/security/test_contract.py)
    "nan-string": '"NaN"',
    "string-number": '"10"',
    "true": "true",
    "null": "null",
    "array": "[1]",
    "object": '{"n": 1}',
}


def number_cases() -> list[Case]:
    cases = []
    for label, value in ABSURD_NUMBERS.items():
        v = value
        cases += [
            Case(
                f"total-size-{label}-uploads",
                "files",
                "POST",
                "/uploads",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"name": "x.bin", "total_size": {v}}}'),
            ),
            Case(
                f"chunk-size-{label}-uploads",
                "files",
                "POST",
                "/uploads",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"name": "x.bin", "total_size": 10, "chunk_size": {v}}}'),
            ),
            Case(
                f"total-size-{label}-complete",
                "files",
                "POST",
                "/upload_complete",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"file_id": "{{seed}}", "name": "x.bin", "total_size": {v}}}'),
            ),
            Case(
                f"chunk-index-{label}-json",
                "files",
                "POST",
                "/upload_chunk",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"file_id": "{{seed}}", "chunk_index": {v}, "total_chunks": 3, "chunk_data": "eA=="}}'),
            ),
            Case(
                f"total-chunks-{label}-json",
                "files",
                "POST",
                "/upload_chunk",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"file_id": "{{seed}}", "chunk_index": 1, "total_chunks": {v}, "chunk_data": "eA=="}}'),
            ),
            Case(
                f"expires-in-{label}-share",
                "files",
                "POST",
                "/files/{file}/shares",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"expires_in": {v}}}'),
            ),
            Case(
                f"max-downloads-{label}-share",
                "files",
                "POST",
                "/files/{file}/shares",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"max_downloads": {v}}}'),
            ),
            Case(
                f"expires-in-{label}-uploads",
                "files",
                "POST",
                "/uploads",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"name": "x.bin", "total_size": 1, "expires_in": {v}}}'),
            ),
            Case(
                f"quota-{label}-internal",
                "files",
                "PUT",
                "/internal/owners/alice/quota",
                as_="files-svc",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"quota_bytes": {v}}}'),
            ),
            Case(
                f"quota-{label}-admin",
                "admin",
                "PUT",
                "/admin/users/alice/quota",
                as_="root",
                status=422,
                code="validation_error",
                kw=raw_json(f'{{"quota_bytes": {v}}}'),
            ),
        ]
    cases = [c for c in cases if not _accepted_number(c)]
    # the same numbers as strings in the other two chunk forms (multipart fields, query string)
    for label, value in {
        "minus-one": "-1",
        "huge": "9" * 30,
        "fraction": "1.5",
        "exponent": "1e3",
        "hex": "0x1",
        "spaces": " 1 ",
        "underscore": "1_0",
        "plus": "+1",
        "fullwidth": "\uff11",
        "arabic-indic": "\u0663",
        "empty": "",
    }.items():
        cases += [
            Case(
                f"chunk-index-{label}-form",
                "files",
                "POST",
                "/upload_chunk",
                status=422,
                code="validation_error",
                kw=multipart(
                    (b"file_id", None, b"{seed}"),
                    (b"chunk_index", None, value.encode()),
                    (b"total_chunks", None, b"3"),
                    (b"chunk_data", b"c", b"x"),
                ),
            ),
            Case(
                f"chunk-index-{label}-query",
                "files",
                "POST",
                "/upload_chunk",
                status=422,
                code="validation_error",
                kw={
                    "query_string": {"file_id": "{seed}", "chunk_index": value, "total_chunks": "3"},
                    "data": b"x",
                    "content_type": "application/octet-stream",
                },
            ),
        ]
    # session chunks: the index in the path, the size of the body
    cases += [
        Case("chunk-path-negative", "files", "PUT", "/uploads/{upload}/chunks/-1", code="invalid_chunk", kw={"data": b"x" * CHUNK}),
        Case("chunk-path-past-end", "files", "PUT", "/uploads/{upload}/chunks/2", code="invalid_chunk", kw={"data": b"x" * CHUNK}),
        Case("chunk-path-huge", "files", "PUT", "/uploads/{upload}/chunks/" + "9" * 40, code="invalid_chunk", kw={"data": b"x" * CHUNK}),
        Case("chunk-path-fraction", "files", "PUT", "/uploads/{upload}/chunks/1.5", status=404, code="not_found", kw={"data": b"x"}),
        Case("chunk-path-exponent", "files", "PUT", "/uploads/{upload}/chunks/1e0", status=404, code="not_found", kw={"data": b"x"}),
        Case("chunk-path-hex", "files", "PUT", "/uploads/{upload}/chunks/0x0", status=404, code="not_found", kw={"data": b"x"}),
        Case("chunk-path-fullwidth", "files", "PUT", "/uploads/{upload}/chunks/%EF%BC%91", status=404, code="not_found", kw={"data": b"x"}),
        Case("chunk-body-short", "files", "PUT", "/uploads/{upload}/chunks/0", code="invalid_chunk", kw={"data": b"x" * (CHUNK - 1)}),
        Case("chunk-body-empty", "files", "PUT", "/uploads/{upload}/chunks/0", code="invalid_chunk", kw={"data": b""}),
        Case(
            "chunk-body-over-max",
            "files",
            "PUT",
            "/uploads/{upload}/chunks/1",
            status=413,
            code="payload_too_large",
            kw={"data": b"x" * (CHUNK + 1)},
        ),
        Case(
            "seed-chunk-over-max",
            "files",
            "POST",
            "/upload_chunk",
            status=413,
            code="payload_too_large",
            kw={"json": {"file_id": "{seed}", "chunk_index": 1, "total_chunks": 3, "chunk_data": b64(b"x" * (CHUNK + 1))}},
        ),
        Case(
            "seed-chunk-index-past-total",
            "files",
            "POST",
            "/upload_chunk",
            status=422,
            code="validation_error",
            kw={"json": {"file_id": "{seed}", "chunk_index": 3, "total_chunks": 3, "chunk_data": "eA=="}},
        ),
        Case(
            "seed-total-changed",
            "files",
            "POST",
            "/upload_chunk",
            code="invalid_chunk",
            kw={"json": {"file_id": "{seed}", "chunk_index": 1, "total_chunks": 4, "chunk_data": "eA=="}},
        ),
        Case(
            "seed-total-over-max-chunks",
            "files",
            "POST",
            "/upload_chunk",
            status=422,
            code="validation_error",
            kw={"json": {"chunk_index": 0, "total_chunks": 1001, "chunk_data": "eA=="}},
        ),
        Case(
            "chunk-size-zero",
            "files",
            "POST",
            "/uploads",
            status=422,
            code="validation_error",
            kw={"json": {"name": "x.bin", "total_size": 10, "chunk_size": 0}},
        ),
        Case(
            "chunk-size-over-max",
            "files",
            "POST",
            "/uploads",
            status=422,
            code="validation_error",
            kw={"json": {"name": "x.bin", "total_size": 10, "chunk_size": CHUNK + 1}},
        ),
        Case(
            "total-size-too-many-chunks",
            "files",
            "POST",
            "/uploads",
            status=422,
            code="validation_error",
            kw={"json": {"name": "x.bin", "total_size": 2**63 - 1, "chunk_size": CHUNK}},
        ),
        Case("complete-size-mismatch", "files", "POST", "/uploads/{upload}/complete", status=409, code="upload_incomplete"),
    ]
    # expiry instants that have no UTC time, are past, or are absurdly far ahead
    for label, at in {
        "year-1-east": "0001-01-01T00:00:00+01:00",
        "year-9999-west": "9999-12-31T23:59:59-01:00",
        "year-9999": "9999-12-31T23:59:59Z",
        "epoch": "1970-01-01T00:00:00Z",
        "not-a-date": "tomorrow",
        "month-13": "2030-13-01T00:00:00Z",
        "huge-year": "+275760-09-13T00:00:00Z",
    }.items():
        if label in ("not-a-date", "month-13", "huge-year"):  # a filter may start at any real instant: only non-dates are refused
            cases.append(
                Case(
                    f"since-{label}-audit",
                    "admin",
                    "GET",
                    "/admin/audit",
                    as_="root",
                    status=422,
                    code="validation_error",
                    kw={"query_string": {"since": at}},
                )
            )
        cases += [
            Case(
                f"expires-at-{label}-share",
                "files",
                "POST",
                "/files/{file}/shares",
                status=422,
                code="validation_error",
                kw={"json": {"expires_at": at}},
            ),
            Case(
                f"expires-at-{label}-uploads",
                "files",
                "POST",
                "/uploads",
                status=422,
                code="validation_error",
                kw={"json": {"name": "x.bin", "total_size": 1, "expires_at": at}},
            ),
            Case(
                f"expires-at-{label}-complete",
                "files",
                "POST",
                "/upload_complete",
                status=422,
                code="validation_error",
                kw={"json": {"file_id": "{seed}", "name": "x.bin", "total_size": 5, "expires_at": at}},
            ),
        ]
    # share links: absurd expiry, downloads, options
    cases += [
        Case(
            "share-expires-in-zero",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"expires_in": 0}},
        ),
        Case(
            "share-expires-in-11-years",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"expires_in": 11 * 366 * 86400}},
        ),
        Case(
            "share-max-downloads-zero",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"max_downloads": 0}},
        ),
        Case(
            "share-max-downloads-million-and-one",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"max_downloads": 1_000_001}},
        ),
        Case(
            "share-password-empty",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"password": ""}},
        ),
        Case(
            "share-password-huge",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"password": "x" * 1025}},
        ),
        Case(
            "share-preview-string",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"preview": "no"}},
        ),
        Case(
            "share-burn-a-file",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"burn_after_read": True}},
        ),
        Case(
            "share-visibility",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"visibility": "world"}},
        ),
        Case(
            "share-both-expiries",
            "files",
            "POST",
            "/files/{file}/shares",
            status=422,
            code="validation_error",
            kw={"json": {"expires_in": 60, "expires_at": "2030-01-01T00:00:00Z"}},
        ),
        Case(
            "share-wrong-password",
            "files",
            "GET",
            "/s/{locked}/meta",
            as_="none",
            status=401,
            code="share_password_required",
            kw={"headers": {"X-Share-Password": "x" * 10_000}},
            may_change=LINK_PASSWORD_FAILURE,
        ),
        Case("share-token-traversal", "files", "GET", "/s/..%2f..%2fetc", as_="none", status=404, code="not_found"),
        Case("share-token-long", "files", "GET", "/s/" + "A" * 5000, as_="none", status=404, code="share_not_found"),
        Case(
            "recipient-hostile",
            "files",
            "POST",
            "/files/{file}/recipients",
            status=422,
            code="validation_error",
            kw={"json": {"username": "../bob"}},
        ),
        Case(
            "recipient-braces",
            "files",
            "POST",
            "/files/{file}/recipients",
            status=422,
            code="validation_error",
            kw={"json": {"username": "{u:bob}"}},
        ),
        Case(
            "send-to-braces",
            "files",
            "POST",
            "/send/%7Bu:bob%7D",
            status=422,
            code="validation_error",
            kw={"json": {"name": "x.txt", "data": "eA=="}},
        ),
        Case(
            "zip-too-many", "files", "POST", "/files/zip", status=422, code="validation_error", kw={"json": {"file_ids": ["{file}"] * 1001}}
        ),
        Case("zip-not-a-list", "files", "POST", "/files/zip", status=422, code="validation_error", kw={"json": {"file_ids": "{file}"}}),
        Case("owner-braces-quota", "files", "GET", "/internal/owners/%7Bx%7D/quota", as_="files-svc", status=422, code="validation_error"),
        Case(
            "owner-braces-delete", "files", "DELETE", "/internal/owners/%7Bx%7D/files", as_="files-svc", status=422, code="validation_error"
        ),
        Case(
            "owner-overlong-delete",
            "files",
            "DELETE",
            "/internal/owners/" + "x" * 129 + "/files",
            as_="files-svc",
            status=422,
            code="validation_error",
        ),
        Case("owner-control-stats", "files", "GET", "/internal/stats?owner=a%0ab", as_="files-svc", status=422, code="validation_error"),
        Case(
            "quota-max-file-zero",
            "files",
            "PUT",
            "/internal/owners/alice/quota",
            as_="files-svc",
            status=422,
            code="validation_error",
            kw={"json": {"quota_bytes": 10, "max_file_bytes": 0}},
        ),
    ]
    return cases


# What some of the numbers above mean to a field that accepts them: not hostile there.
_ACCEPTED = {
    # a null expiry, chunk size or max_downloads means "the default"; a null quota means "the service default"
    ("chunk-size", "null"),
    ("expires-in", "null"),
    ("max-downloads", "null"),
    ("quota", "null"),
}


def _accepted_number(case: Case) -> bool:
    return any(case.id.startswith(f"{field_}-{label}-") for field_, label in _ACCEPTED)


# 4. tus headers.
def tus_cases() -> list[Case]:
    create = "/tus/"
    patch = {"Content-Type": "application/offset+octet-stream"}
    return [
        Case(
            "tus-resumable-wrong",
            "files",
            "POST",
            create,
            status=412,
            code="precondition_failed",
            kw={"headers": {"Tus-Resumable": "0.2.2", "Upload-Length": "1"}},
        ),
        Case(
            "tus-resumable-missing", "files", "POST", create, status=412, code="precondition_failed", kw={"headers": {"Upload-Length": "1"}}
        ),
        Case("tus-length-negative", "files", "POST", create, kw=tus_headers(**{"Upload-Length": "-1"})),
        Case("tus-length-20-digits", "files", "POST", create, kw=tus_headers(**{"Upload-Length": "9" * 20})),
        Case(
            "tus-length-over-max",
            "files",
            "POST",
            create,
            status=413,
            code="payload_too_large",
            kw=tus_headers(**{"Upload-Length": str(2**63 - 1)}),
        ),
        Case("tus-length-float", "files", "POST", create, kw=tus_headers(**{"Upload-Length": "1e3"})),
        Case("tus-length-and-defer", "files", "POST", create, kw=tus_headers(**{"Upload-Length": "1", "Upload-Defer-Length": "1"})),
        Case("tus-defer-two", "files", "POST", create, kw=tus_headers(**{"Upload-Defer-Length": "2"})),
        Case("tus-neither", "files", "POST", create, kw=tus_headers()),
        Case(
            "tus-metadata-bad-base64", "files", "POST", create, kw=tus_headers(**{"Upload-Length": "1", "Upload-Metadata": "filename !!!"})
        ),
        Case(
            "tus-metadata-duplicate",
            "files",
            "POST",
            create,
            kw=tus_headers(**{"Upload-Length": "1", "Upload-Metadata": "filename eA==,filename eQ=="}),
        ),
        Case(
            "tus-metadata-key-with-space",
            "files",
            "POST",
            create,
            kw=tus_headers(**{"Upload-Length": "1", "Upload-Metadata": "file name eA=="}),
        ),
        Case(
            "tus-metadata-huge",
            "files",
            "POST",
            create,
            kw=tus_headers(**{"Upload-Length": "1", "Upload-Metadata": "filename " + b64(b"x" * 4000)}),
        ),
        Case(
            "tus-concat-foreign", "files", "POST", create, kw=tus_headers(**{"Upload-Concat": "final;http://evil.example/x/../tus/nothing"})
        ),
        Case("tus-concat-garbage", "files", "POST", create, kw=tus_headers(**{"Upload-Concat": "final;"})),
        Case(
            "tus-checksum-unknown",
            "files",
            "PATCH",
            "/tus/{tus}",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Checksum": "sha999 eA==", **patch}, "data": b"x"},
        ),
        Case(
            "tus-checksum-bad-base64",
            "files",
            "PATCH",
            "/tus/{tus}",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Checksum": "sha1 !!!", **patch}, "data": b"x"},
        ),
        Case(
            "tus-checksum-mismatch",
            "files",
            "PATCH",
            "/tus/{tus}",
            status=460,
            code="checksum_mismatch",
            kw={
                "headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Checksum": "sha1 " + b64(b"\0" * 20), **patch},
                "data": b"x",
            },
        ),
        Case(
            "tus-offset-negative",
            "files",
            "PATCH",
            "/tus/{tus}",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "-1", **patch}, "data": b"x"},
        ),
        Case(
            "tus-offset-huge",
            "files",
            "PATCH",
            "/tus/{tus}",
            status=409,
            code="conflict",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "9" * 19, **patch}, "data": b"x"},
        ),
        Case("tus-offset-missing", "files", "PATCH", "/tus/{tus}", kw={"headers": {"Tus-Resumable": "1.0.0", **patch}, "data": b"x"}),
        Case(
            "tus-offset-text",
            "files",
            "PATCH",
            "/tus/{tus}",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "zero", **patch}, "data": b"x"},
        ),
        Case(
            "tus-offset-wrong",
            "files",
            "PATCH",
            "/tus/{tus}",
            status=409,
            code="conflict",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "5", **patch}, "data": b"x"},
        ),
        Case(
            "tus-past-length",
            "files",
            "PATCH",
            "/tus/{tus}",
            status=413,
            code="payload_too_large",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", **patch}, "data": b"x" * 11},
        ),
        Case(
            "tus-patch-content-type",
            "files",
            "PATCH",
            "/tus/{tus}",
            status=415,
            code="unsupported_media_type",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "0"}, "data": b"x", "content_type": "application/octet-stream"},
        ),
        Case(
            "tus-length-changed",
            "files",
            "PATCH",
            "/tus/{tus}",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Offset": "0", "Upload-Length": "11", **patch}, "data": b"x"},
        ),
        Case(
            "tus-create-body-type",
            "files",
            "POST",
            create,
            status=415,
            code="unsupported_media_type",
            kw={"headers": {"Tus-Resumable": "1.0.0", "Upload-Length": "1"}, "data": b"x", "content_type": "text/plain"},
        ),
        Case(
            "tus-method-override",
            "files",
            "POST",
            "/tus/{tus}",
            status=405,
            code="method_not_allowed",
            kw=tus_headers(**{"X-HTTP-Method-Override": "PUT"}),
        ),
    ]


# 5. Bodies: wrong Content-Type, deeply nested, huge, duplicate keys, NaN, on a GET, unknown fields.
def body_cases() -> list[Case]:
    deep_array = "[" * 20_000 + "]" * 20_000
    deep_object = '{"a":' * 10_000 + "1" + "}" * 10_000
    huge = json.dumps({"name": "x.txt", "content": "x" * (2 * 1024 * 1024)})
    cases = [
        Case(
            "content-type-text-upload-chunk",
            "files",
            "POST",
            "/upload_chunk",
            status=415,
            code="unsupported_media_type",
            kw={"data": '{"chunk_index": 0, "total_chunks": 1, "chunk_data": "eA=="}', "content_type": "text/plain"},
        ),
        Case(
            "content-type-xml-files",
            "files",
            "POST",
            "/files",
            status=415,
            code="unsupported_media_type",
            kw={"data": "<file/>", "content_type": "application/xml"},
        ),
        Case(
            "content-type-multipart-no-boundary",
            "files",
            "POST",
            "/upload_chunk",
            status=422,
            code="validation_error",
            kw={"data": b"--x\r\n", "content_type": "multipart/form-data"},
        ),
        Case(
            "content-type-text-texts",
            "files",
            "POST",
            "/texts",
            status=422,
            code="validation_error",
            kw={"data": '{"name": "a.txt", "content": "x"}', "content_type": "text/plain"},
        ),
        Case(
            "content-type-form-uploads",
            "files",
            "POST",
            "/uploads",
            status=422,
            code="validation_error",
            kw={"data": {"name": "a.txt", "total_size": "1"}},
        ),
        Case(
            "content-type-form-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=422,
            code="validation_error",
            kw={"data": {"username": "alice", "password": PASSWORD}},
        ),
        Case(
            "content-type-text-admin",
            "admin",
            "POST",
            "/admin/users",
            as_="root",
            status=422,
            code="validation_error",
            kw={"data": '{"username": "eve", "password": "password-123"}', "content_type": "text/plain"},
        ),
    ]
    for service, path, as_ in (
        ("files", "/texts", "alice"),
        ("files", "/uploads", "alice"),
        ("auth", "/auth/login", "none"),
        ("auth", "/internal/users", "auth-svc"),
        ("admin", "/admin/users", "root"),
        ("files", "/upload_chunk", "alice"),
        ("files", "/files", "alice"),
    ):
        tag = path.strip("/").replace("/", "-")
        cases += [
            Case(f"deep-array-{service}-{tag}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json(deep_array)),
            Case(f"deep-object-{service}-{tag}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json(deep_object)),
            Case(f"huge-json-{service}-{tag}", service, "POST", path, as_=as_, status=413, code="payload_too_large", kw=raw_json(huge)),
            Case(f"nan-literal-{service}-{tag}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json('{"a": NaN}')),
            Case(f"infinity-literal-{service}-{tag}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json('{"a": -Infinity}')),
            Case(f"not-json-{service}-{tag}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json("{'a': 1}")),
            Case(f"trailing-garbage-{service}-{tag}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json('{"a": 1} x')),
        ]
    # duplicate keys: one parser takes the first, another the last; refused whatever the values
    for label, service, path, as_, body in (
        ("texts", "files", "/texts", "alice", '{"name": "a.txt", "name": "b.txt", "content": "x"}'),
        ("rename", "files", "/files/{file}/rename", "alice", '{"new_name": "a.txt", "new_name": "b.txt"}'),
        ("uploads", "files", "/uploads", "alice", '{"name": "a.bin", "total_size": 1, "total_size": 100}'),
        (
            "upload-chunk",
            "files",
            "/upload_chunk",
            "alice",
            '{"chunk_index": 0, "chunk_index": 1, "total_chunks": 2, "chunk_data": "eA=="}',
        ),
        ("share", "files", "/files/{file}/shares", "alice", '{"visibility": "private", "visibility": "public"}'),
        ("nested", "files", "/files/zip", "alice", '{"file_ids": ["{file}"], "x": {"a": 1, "a": 2}}'),
        ("login", "auth", "/auth/login", "none", '{"username": "alice", "username": "bob", "password": "password-123"}'),
        (
            "create-user",
            "auth",
            "/internal/users",
            "auth-svc",
            '{"username": "eve", "password": "password-123", "role": "user", "role": "admin"}',
        ),
        ("admin-user", "admin", "/admin/users", "root", '{"username": "eve", "password": "password-123", "role": "user", "role": "admin"}'),
        ("admin-role", "admin", "/admin/roles", "root", '{"username": "bob", "username": "alice", "role": "admin"}'),
    ):
        cases.append(Case(f"duplicate-keys-{label}", service, "POST", path, as_=as_, code="invalid_json", kw=raw_json(body)))
    # a body on a GET or HEAD: refused before it could be read as anything (or as a second request).
    # Not on /tus/, whose X-HTTP-Method-Override makes a GET with a body a PATCH (the tus protocol's).
    for label, service, method, path, as_ in (
        ("files-list", "files", "GET", "/files", "alice"),
        ("download", "files", "GET", "/files/{file}", "alice"),
        ("head", "files", "HEAD", "/files/{file}", "alice"),
        ("link", "files", "GET", "/s/{token}", "none"),
        ("me", "auth", "GET", "/auth/me", "alice"),
        ("admin-users", "admin", "GET", "/admin/users", "root"),
        ("internal-users", "auth", "GET", "/internal/users", "auth-svc"),
    ):
        cases.append(Case(f"get-body-{label}", service, method, path, as_=as_, kw={"json": {"evil": True}}))
    # unknown fields: refused, never half-understood (nor mass-assigned)
    for label, service, method, path, as_, fields in (
        ("uploads-owner", "files", "POST", "/uploads", "alice", {"name": "a.bin", "total_size": 1, "owner": "bob"}),
        ("texts-kind", "files", "POST", "/texts", "alice", {"content": "x", "kind": "file"}),
        ("files-owner", "files", "POST", "/files", "alice", {"name": "a.txt", "data": "eA==", "owner": "bob"}),
        ("rename-owner", "files", "POST", "/files/{file}/rename", "alice", {"new_name": "a.txt", "owner": "bob"}),
        ("complete-size", "files", "POST", "/upload_complete", "alice", {"file_id": "{seed}", "name": "a", "total_size": 5, "size": 1}),
        ("share-downloads", "files", "POST", "/files/{file}/shares", "alice", {"downloads": 5}),
        ("recipient-role", "files", "POST", "/files/{file}/recipients", "alice", {"username": "bob", "role": "owner"}),
        ("quota-used", "files", "PUT", "/internal/owners/alice/quota", "files-svc", {"quota_bytes": 10, "used": 0}),
        ("login-role", "auth", "POST", "/auth/login", "none", {"username": "alice", "password": PASSWORD, "role": "admin"}),
        ("create-user-admin", "auth", "POST", "/internal/users", "auth-svc", {"username": "eve", "password": PASSWORD, "is_admin": True}),
        ("patch-user-name", "auth", "PATCH", "/internal/users/bob", "auth-svc", {"active": True, "username": "root"}),
        ("admin-user-active", "admin", "POST", "/admin/users", "root", {"username": "eve", "password": PASSWORD, "active": False}),
        ("admin-quota", "admin", "PUT", "/admin/users/alice/quota", "root", {"quota_bytes": 10, "owner": "bob"}),
    ):
        cases.append(
            Case(f"unknown-field-{label}", service, method, path, as_=as_, status=422, code="validation_error", kw={"json": fields})
        )
    return cases


# 6. Usernames and passwords hostile to auth; a password over the cap costs no Argon2 at all.
def account_cases() -> list[Case]:
    cases = []
    for label, name in {
        "traversal": "../admin",
        "nul": "admin\x00",
        "newline": "admin\n",
        "space": "ad min",
        "cyrillic": "\u0430dmin",
        "braces": "{admin}",
        "long": "a" * 33,
        "one-char": "a",
        "leading-dot": ".admin",
        "emoji": "\U0001f600",
    }.items():
        cases += [
            Case(
                f"username-{label}-create",
                "auth",
                "POST",
                "/internal/users",
                as_="auth-svc",
                status=422,
                code="validation_error",
                kw={"json": {"username": name, "password": PASSWORD}},
            ),
            Case(
                f"username-{label}-admin-create",
                "admin",
                "POST",
                "/admin/users",
                as_="root",
                status=422,
                code="validation_error",
                kw={"json": {"username": name, "password": PASSWORD}},
            ),
            Case(
                f"username-{label}-role",
                "admin",
                "POST",
                "/admin/roles",
                as_="root",
                status=404,
                code="user_not_found",
                kw={"json": {"username": name, "role": "admin"}},
            ),
        ]
    cases += [
        Case(
            "username-existing-other-case",
            "auth",
            "POST",
            "/internal/users",
            as_="auth-svc",
            status=409,
            code="user_exists",
            kw={"json": {"username": "ALICE", "password": PASSWORD}},
        ),
        Case(
            "username-too-long-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=422,
            code="validation_error",
            kw={"json": {"username": "a" * 65, "password": PASSWORD}},
            no_argon2=True,
        ),
        Case(
            "username-not-a-string-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=422,
            code="validation_error",
            kw={"json": {"username": ["alice"], "password": PASSWORD}},
            no_argon2=True,
        ),
        Case(
            "username-nul-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=401,
            code="invalid_credentials",
            kw={"json": {"username": "alice\x00", "password": PASSWORD}},
            may_change=LOGIN_FAILURE,
        ),
        Case(
            "role-root",
            "auth",
            "POST",
            "/internal/users",
            as_="auth-svc",
            status=422,
            code="validation_error",
            kw={"json": {"username": "eve", "password": PASSWORD, "role": "root"}},
        ),
        Case(
            "active-string",
            "auth",
            "PATCH",
            "/internal/users/bob",
            as_="auth-svc",
            status=422,
            code="validation_error",
            kw={"json": {"active": "false"}},
        ),
        Case(
            "admin-path-dotdot",
            "admin",
            "PATCH",
            "/admin/users/..",
            as_="root",
            status=404,
            code="user_not_found",
            kw={"json": {"active": False}},
        ),
        Case("admin-path-dot-delete", "admin", "DELETE", "/admin/users/.", as_="root", status=404, code="user_not_found"),
        Case(
            "admin-path-dotdot-quota",
            "admin",
            "PUT",
            "/admin/users/../quota",
            as_="root",
            status=404,
            code="user_not_found",
            kw={"json": {"quota_bytes": 1}},
        ),
        Case(
            "admin-path-encoded-dotdot-quota",
            "admin",
            "PUT",
            "/admin/users/%2e%2e/quota",
            as_="root",
            status=404,
            code="user_not_found",
            kw={"json": {"quota_bytes": 1}},
        ),
        Case("admin-path-slash", "admin", "DELETE", "/admin/users/alice%2f..%2fbob", as_="root", status=404, code="user_not_found"),
    ]
    # passwords: capped at 1024 characters before any hashing (Argon2 time grows with the input)
    for label, size in (("1025", 1025), ("60k", 60_000)):
        huge = "x" * size
        cases += [
            Case(
                f"password-{label}-login",
                "auth",
                "POST",
                "/auth/login",
                as_="none",
                status=422,
                code="validation_error",
                kw={"json": {"username": "alice", "password": huge}},
                no_argon2=True,
            ),
            Case(
                f"password-{label}-create",
                "auth",
                "POST",
                "/internal/users",
                as_="auth-svc",
                status=422,
                code="validation_error",
                kw={"json": {"username": "eve", "password": huge}},
                no_argon2=True,
            ),
            Case(
                f"password-{label}-patch",
                "auth",
                "PATCH",
                "/internal/users/bob",
                as_="auth-svc",
                status=422,
                code="validation_error",
                kw={"json": {"password": huge}},
                no_argon2=True,
            ),
            Case(
                f"password-{label}-change-current",
                "auth",
                "POST",
                "/auth/password",
                status=422,
                code="validation_error",
                kw={"json": {"current_password": huge, "new_password": "password-456"}},
                no_argon2=True,
            ),
            Case(
                f"password-{label}-change-new",
                "auth",
                "POST",
                "/auth/password",
                status=422,
                code="validation_error",
                kw={"json": {"current_password": PASSWORD, "new_password": huge}},
                no_argon2=True,
            ),
            Case(
                f"password-{label}-admin-create",
                "admin",
                "POST",
                "/admin/users",
                as_="root",
                status=422,
                code="validation_error",
                kw={"json": {"username": "eve", "password": huge}},
                no_argon2=True,
            ),
            Case(
                f"password-{label}-admin-patch",
                "admin",
                "PATCH",
                "/admin/users/bob",
                as_="root",
                status=422,
                code="validation_error",
                kw={"json": {"password": huge}},
                no_argon2=True,
            ),
        ]
    cases += [
        Case(
            "password-short-create",
            "auth",
            "POST",
            "/internal/users",
            as_="auth-svc",
            status=422,
            code="validation_error",
            kw={"json": {"username": "eve", "password": "short"}},
            no_argon2=True,
        ),
        Case(
            "password-empty-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=422,
            code="validation_error",
            kw={"json": {"username": "alice", "password": ""}},
            no_argon2=True,
        ),
        Case(
            "password-null-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=422,
            code="validation_error",
            kw={"json": {"username": "alice", "password": None}},
            no_argon2=True,
        ),
        Case(
            "password-number-login",
            "auth",
            "POST",
            "/auth/login",
            as_="none",
            status=422,
            code="validation_error",
            kw={"json": {"username": "alice", "password": 12345678}},
            no_argon2=True,
        ),
        Case(
            "refresh-token-huge",
            "auth",
            "POST",
            "/auth/refresh",
            as_="none",
            status=422,
            code="validation_error",
            kw={"json": {"refresh_token": "x" * 10_000}},
        ),
    ]
    return cases


# Cases whose refusal is another 4xx than their family's, and why.
OVERRIDES = {
    # the zip's name has its own length bounds (1-200 characters) before the name rules
    "name-empty-zip": (422, "validation_error"),
    "name-overlong-ascii-zip": (422, "validation_error"),
    # a numeric string is a number in the chunk fields (they come from forms and query strings too): 10 is not the declared total
    "total-chunks-string-number-json": (400, "invalid_chunk"),
    # "../admin" travels to auth as one segment (..%2Fadmin), which auth decodes into a path no route matches
    "username-traversal-role": (404, "not_found"),
    # %2f is decoded before routing: /admin/users/alice/../bob matches no route
    "admin-path-slash": (404, "not_found"),
}


def all_cases() -> list[Case]:
    cases = [*name_cases(), *folder_cases(), *utf8_cases(), *number_cases(), *tus_cases(), *body_cases(), *account_cases()]
    cases = [replace(c, status=OVERRIDES[c.id][0], code=OVERRIDES[c.id][1]) if c.id in OVERRIDES else c for c in cases]
    assert set(OVERRIDES) <= {c.id for c in cases}, set(OVERRIDES) - {c.id for c in cases}
    ids = [c.id for c in cases]
    assert len(ids) == len(set(ids)), sorted({i for i in ids if ids.count(i) > 1})
    return cases


CASES = all_cases()


def _fill(value, ids: dict[str, str]):
    if isinstance(value, str):
        for k, v in ids.items():
            value = value.replace("{" + k + "}", v)
        return value
    if isinstance(value, bytes):
        for k, v in ids.items():
            value = value.replace(b"{" + k.encode() + b"}", v.encode())
        return value
    if isinstance(value, dict):
        return {_fill(k, ids): _fill(v, ids) for k, v in value.items()}
    if isinstance(value, list):
        return [_fill(v, ids) for v in value]
    return value


def send(env: Env, case: Case):
    kw = _fill(case.kw, env.ids)
    headers = {**env.auth(case.as_), **kw.pop("headers", {})}
    client = env.clients[case.service]
    return client.open(_fill(case.path, env.ids), method=case.method, headers=headers, **kw)


def test_the_checks_can_fail(env):
    """The controls: a valid request is seen storing, and a password check is seen costing Argon2."""
    env.reset()
    before, argon_before = contents(env.r), env.argon.calls
    assert env.clients["files"].post("/texts", headers=env.headers["alice"], json={"name": "ok.txt", "content": "x"}).status_code == 201
    with pytest.raises(AssertionError, match="Redis changed"):
        assert_unchanged(before, contents(env.r))
    login = env.clients["auth"].post(
        "/auth/login", json={"username": "bob", "password": PASSWORD}, environ_base={"REMOTE_ADDR": "192.0.2.2"}
    )
    assert login.status_code == 200 and env.argon.calls > argon_before


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input_is_refused_and_nothing_is_stored(env, case):
    env.reset()
    before = contents(env.r)
    argon_before = env.argon.calls
    resp = send(env, case)
    if case.method == "HEAD":  # no body to read: the status tells
        assert resp.status_code == case.status, (case.id, resp.status_code, resp.headers)
    else:
        assert_refused(resp.status_code, resp.get_data(), resp.content_type or "", case)
    assert_unchanged(before, contents(env.r), case.may_change)
    if case.no_argon2:
        assert env.argon.calls == argon_before, f"{case.id}: Argon2 ran on a refused password"


# -- Range headers: ignored (the whole file) or 416, never a 5xx, never stored ------------------
CONTENT = b"stored bytes"  # the seeded file {file}
RANGES = {
    "suffix-zero": ("bytes=-0", {200, 416}),
    "start-past-end": ("bytes=999999999999-", {416}),
    "huge-end": ("bytes=0-99999999999999999999999", {206}),
    "huge-suffix": ("bytes=-99999999999999999999", {200, 206}),
    "inverted": ("bytes=5-1", {200, 416}),
    "double-minus": ("bytes=--1", {200, 416}),
    "empty-set": ("bytes=", {200, 416}),
    "other-unit": ("items=0-1", {200}),
    "two-ranges": ("bytes=0-0,2-3", {200}),
    "thousand-ranges": ("bytes=" + ",".join(f"{i}-{i}" for i in range(1000)), {200}),
    "overlapping-ranges": ("bytes=0-5,0-5,0-5,0-5", {200}),
    "three-numbers": ("bytes=1-2-3", {200, 416}),
    "not-ascii": ("bytes=\xff-\xfe", {200, 416}),
    "spaces": ("bytes = 0 - 1", {200, 206, 416}),
}


@pytest.mark.parametrize("method", ["GET", "HEAD"])
@pytest.mark.parametrize("label", list(RANGES))
def test_absurd_ranges_are_ignored_or_refused(env, label, method):
    header, allowed = RANGES[label]
    env.reset()
    before = contents(env.r)
    resp = env.clients["files"].open(f"/files/{env.ids['file']}", method=method, headers={**env.headers["alice"], "Range": header})
    body = resp.get_data()
    assert resp.status_code in allowed, (label, resp.status_code, body[:200])
    if resp.status_code == 200:
        assert resp.headers["Content-Length"] == str(len(CONTENT)) and body == (CONTENT if method == "GET" else b"")
    elif resp.status_code == 206:
        first, last = map(int, resp.headers["Content-Range"].removeprefix("bytes ").split("/")[0].split("-"))
        assert resp.headers["Content-Range"].endswith(f"/{len(CONTENT)}") and 0 <= first <= last < len(CONTENT)
        assert body == (CONTENT[first : last + 1] if method == "GET" else b"")
    else:
        assert resp.headers["Content-Range"] == f"bytes */{len(CONTENT)}"
        if method == "GET":
            assert_refused(416, body, resp.content_type, Case(label, "files", method, "", status=416, code="range_not_satisfiable"))
    assert_unchanged(before, contents(env.r))


# -- on the wire: real gunicorn, raw sockets -----------------------------------------------------
@pytest.fixture(scope="module")
def wire(env, tmp_path_factory):
    """Real gunicorn processes of files and auth on the same Redis (``ServiceProcess``, as the gunicorn fixture)."""
    log_dir = tmp_path_factory.mktemp("gunicorn")
    env.reset()
    files_env = {k.upper(): str(v) for k, v in FILES_LIMITS.items()}
    auth_env = {"ADMIN_USERS": "admin", "ADMIN_PASSWORD": ADMIN_PASSWORD, **{k.upper(): str(v) for k, v in CHEAP_ARGON2.items()}}
    procs = {
        "files": ServiceProcess("files", env.redis_url, log_dir, **files_env),
        "auth": ServiceProcess("auth", env.redis_url, log_dir, **auth_env),
    }
    try:
        for proc in procs.values():
            proc.wait_ready()
        yield {name: proc.port for name, proc in procs.items()}
    finally:
        for proc in procs.values():
            proc.stop()


def exchange(port: int, request: bytes, *, half_close: bool = False) -> bytes:
    """Send raw bytes, then read until the server closes (every request says Connection: close); bounded."""
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        try:
            sock.sendall(request)
            if half_close:
                sock.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server refused before reading it all: its answer may still be there
        for _ in range(1000):
            try:
                piece = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not piece:
                break
            received += piece
    return received


def responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """The HTTP/1.1 responses in ``raw``, in order (each framed by its Content-Length)."""
    out = []
    while raw.startswith(b"HTTP/1."):
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", len(rest)))
        out.append((int(lines[0].split()[1]), headers, rest[:length]))
        raw = rest[length:]
    return out


@dataclass(frozen=True)
class Wire:
    id: str
    service: str
    request: bytes  # placeholders: {file} {upload} {locked} {token} and AUTH (alice's Authorization header line)
    status: int | None = None  # None: any 4xx, answered by gunicorn itself (its own text/html page)
    code: str | None = None
    half_close: bool = False
    may_change: tuple[str, ...] = ()


def http(head: str, body: bytes = b"", *, auth: bool = True) -> bytes:
    """A request: ``head`` is the request line and any headers (CRLF-separated); Host, AUTH and Connection: close are added."""
    lines = head.split("\r\n")
    extra = ["Host: 127.0.0.1", *(["AUTH"] if auth else []), "Connection: close"]
    return ("\r\n".join([lines[0], *extra, *lines[1:]]) + "\r\n\r\n").encode("latin-1") + body


WIRE_CASES = [
    # over gunicorn's limits: refused by gunicorn before any app code runs
    Wire("header-64k", "files", http("GET /files HTTP/1.1\r\nX-Padding: " + "a" * 65536)),
    Wire("authorization-64k", "files", http("GET /files HTTP/1.1\r\nAuthorization: Bearer " + "a" * 65536, auth=False)),
    Wire(
        "header-64k-login",
        "auth",
        http(
            "POST /auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nX-Padding: " + "a" * 65536,
            b"{}",
            auth=False,
        ),
    ),
    Wire("two-hundred-headers", "files", http("GET /files HTTP/1.1\r\n" + "\r\n".join(f"X-H{i}: v" for i in range(200)))),
    Wire("request-line-16k", "files", http("GET /files/" + "a" * 16384 + " HTTP/1.1")),
    Wire("header-name-not-ascii", "files", http("GET /files HTTP/1.1\r\nX-\xff: 1")),
    Wire("header-value-nul", "files", http("GET /files HTTP/1.1\r\nX-A: a\x00b")),
    Wire("garbage-request-line", "files", b"HELLO\r\n\r\n"),
    Wire("content-length-negative", "files", http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: -1", b"{}")),
    Wire(
        "content-length-not-a-number", "files", http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: ten", b"{}")
    ),
    Wire(
        "content-length-twice",
        "files",
        http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 2\r\nContent-Length: 30", b"{}"),
    ),
    Wire(
        "content-length-and-chunked",
        "files",
        http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 5\r\nTransfer-Encoding: chunked", b"0\r\n\r\n"),
    ),
    # bodies that lie about their length: refused by the app, nothing stored
    Wire(
        "content-length-longer-chunk",
        "files",
        http(f"PUT /uploads/{{upload}}/chunks/0 HTTP/1.1\r\nContent-Type: application/octet-stream\r\nContent-Length: {CHUNK}", b"x" * 10),
        status=400,
        code="bad_request",
        half_close=True,
    ),
    Wire(
        "content-length-longer-json",
        "files",
        http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 100", b'{"name": "a.txt", "content": "x"}'),
        status=400,
        code="bad_request",
        half_close=True,
    ),  # whole JSON, but not the whole body: refused
    Wire(
        "content-length-longer-seed-chunk",
        "files",
        http(
            "POST /upload_chunk?file_id={seed}&chunk_index=1&total_chunks=3 HTTP/1.1\r\nContent-Type: application/octet-stream\r\n"
            "Content-Length: 20",
            b"short",
        ),
        status=400,
        code="bad_request",
        half_close=True,
    ),
    Wire(
        "content-length-longer-multipart",
        "files",
        http(
            "POST /files HTTP/1.1\r\nContent-Type: multipart/form-data; boundary=XyZ\r\nContent-Length: 500",
            b'--XyZ\r\nContent-Disposition: form-data; name="file"; filename="a.txt"\r\n\r\nx\r\n--XyZ--\r\n',
        ),
        status=400,
        code="bad_request",
        half_close=True,
    ),
    Wire(
        "content-length-shorter-json",
        "files",
        http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 10", b'{"name": "a.txt", "content": "x"}'),
        status=400,
        code="invalid_json",
    ),
    Wire(
        "content-length-longer-tus-checksum",
        "files",
        http(
            "PATCH /tus/{tus} HTTP/1.1\r\nTus-Resumable: 1.0.0\r\nUpload-Offset: 0\r\nContent-Type: application/offset+octet-stream\r\n"
            "Upload-Checksum: sha1 " + b64(b"\0" * 20) + "\r\nContent-Length: 10",
            b"xyz",
        ),
        status=400,
        code="bad_request",
        half_close=True,
    ),
    Wire(
        "chunked-bad-size-chunk",
        "files",
        http(
            "PUT /uploads/{upload}/chunks/0 HTTP/1.1\r\nContent-Type: application/octet-stream\r\nTransfer-Encoding: chunked",
            b"zz\r\nxx\r\n0\r\n\r\n",
        ),
        status=400,
        code="bad_request",
    ),
    Wire(
        "chunked-bad-size-json",
        "files",
        http("POST /texts HTTP/1.1\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked", b"zz\r\n{}\r\n0\r\n\r\n"),
        status=400,
        code="bad_request",
    ),
    # a body on a GET is refused, and never read as a second request
    Wire(
        "get-body-smuggled-request",
        "files",
        http("GET /files HTTP/1.1\r\nContent-Length: 61", b"DELETE /files/{file} HTTP/1.1\r\nHost: 127.0.0.1\r\nAUTH\r\n\r\n"),
        status=400,
        code="bad_request",
    ),
    Wire(
        "get-chunked-body",
        "files",
        http("GET /files HTTP/1.1\r\nTransfer-Encoding: chunked", b"3\r\nabc\r\n0\r\n\r\n"),
        status=400,
        code="bad_request",
    ),
    # bytes that are not UTF-8 in the URL and in headers
    Wire("url-raw-ff", "files", http("GET /files/\xff\xfe HTTP/1.1")),  # gunicorn: not a valid request line
    Wire("url-percent-ff", "files", http("GET /files/%ff HTTP/1.1"), status=404, code="file_not_found"),
    Wire("url-traversal", "files", http("GET /files/../internal/files HTTP/1.1"), status=404, code="not_found"),
    Wire("url-encoded-traversal", "files", http("GET /files/..%2f..%2finternal%2ffiles HTTP/1.1"), status=404, code="not_found"),
    Wire(
        "authorization-raw-ff",
        "files",
        http("GET /files HTTP/1.1\r\nAuthorization: Bearer \xff\xfe", auth=False),
        status=401,
        code="invalid_token",
    ),
    Wire(
        "share-password-raw-ff",
        "files",
        http("GET /s/{locked}/meta HTTP/1.1\r\nX-Share-Password: \xff\xfe", auth=False),
        status=401,
        code="share_password_required",
        may_change=LINK_PASSWORD_FAILURE,
    ),
    Wire(
        "login-raw-ff-body",
        "auth",
        http(
            "POST /auth/login HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 39",
            b'{"username":"\xff\xfe","password":"pw-123456"}',
            auth=False,
        ),
        status=400,
        code="invalid_json",
    ),
]


@pytest.mark.parametrize("case", WIRE_CASES, ids=[c.id for c in WIRE_CASES])
def test_hostile_bytes_on_the_wire(env, wire, case):
    env.reset()
    before = contents(env.r)
    auth_line = "Authorization: " + env.headers["alice"]["Authorization"]
    request = _fill(case.request, env.ids).replace(b"AUTH", auth_line.encode())
    if b"Content-Length: 61" in request:  # the smuggled request's real length, now that its placeholders are filled
        smuggled = request.split(b"\r\n\r\n", 1)[1]
        request = request.replace(b"Content-Length: 61", f"Content-Length: {len(smuggled)}".encode())
    answers = responses(exchange(wire[case.service], request, half_close=case.half_close))
    assert len(answers) == 1, f"{case.id}: {len(answers)} responses: {answers}"
    status, headers, body = answers[0]
    assert 400 <= status < 500, (case.id, status, body[:300])
    if case.status is not None:  # the app's answer: the one JSON shape
        assert_refused(
            status, body, headers.get("content-type", ""), Case(case.id, case.service, "", "", status=case.status, code=case.code)
        )
    assert_unchanged(before, contents(env.r), case.may_change)
