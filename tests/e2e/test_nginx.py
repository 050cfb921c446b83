"""The shipped nginx front door (deploy/nginx/redfile.conf.template) in front of the real services.

Debian's nginx runs the template rendered the way the official image's entrypoint renders it
(only the ``${REDFILE_*}`` names are filled in), proxying to the gunicorn services that
``make run`` started for this session.  The tests drive it over loopback: routes, headers,
uploads of every kind, tus, a large download, bodies that stream without a temporary file,
and a client that drops mid-upload.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from tusclient import client as tus_client

from redfile_dev.redis_server import free_port

from .conftest import Api, docs_load_through

pytestmark = pytest.mark.timeout(240)

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "nginx" / "redfile.conf.template"
CHUNK = 8 * 1024 * 1024 - 4 * 1024  # DEFAULT_CHUNK_BYTES: the chunk size the README gives tus clients behind the Ingress
MIB = 1024 * 1024


def render(template: str, values: dict[str, str]) -> str:
    """``envsubst`` restricted to ``${REDFILE_*}``, as NGINX_ENVSUBST_FILTER=^REDFILE_ makes the image's entrypoint do."""
    names = set(re.findall(r"\$\{(REDFILE_[A-Z_]+)\}", template))
    assert names == set(values), f"the template uses {sorted(names)}"
    return re.sub(r"\$\{(REDFILE_[A-Z_]+)\}", lambda m: values[m.group(1)], template)


class FrontDoor:
    """One nginx master (and one worker) with the rendered template as its only server."""

    def __init__(self, root: Path, upstreams: dict[str, int]) -> None:
        self.root = root
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.temp = root / "temp"
        rendered = render(
            TEMPLATE.read_text(),
            {
                "REDFILE_LISTEN": f"127.0.0.1:{self.port}",
                "REDFILE_AUTH_UPSTREAM": f"127.0.0.1:{upstreams['auth']}",
                "REDFILE_FILES_UPSTREAM": f"127.0.0.1:{upstreams['files']}",
                "REDFILE_ADMIN_UPSTREAM": f"127.0.0.1:{upstreams['admin']}",
            },
        )
        (root / "redfile.conf").write_text(rendered)
        self.temp.mkdir()
        # What the official image's nginx.conf gives the include; paths kept inside root.  As root,
        # nginx's workers would run as nobody, who cannot enter pytest's private temporary folder.
        user = "user root root;" if os.geteuid() == 0 else ""
        (root / "nginx.conf").write_text(
            f"""
            {user}
            worker_processes 1;
            pid {root}/nginx.pid;
            error_log {root}/error.log info;
            events {{ worker_connections 256; }}
            http {{
                access_log {root}/access.log;
                client_body_temp_path {self.temp}/client_body;
                proxy_temp_path {self.temp}/proxy;
                fastcgi_temp_path {self.temp}/fastcgi;
                uwsgi_temp_path {self.temp}/uwsgi;
                scgi_temp_path {self.temp}/scgi;
                include {root}/redfile.conf;
            }}
            """
        )
        self.proc: subprocess.Popen | None = None

    def command(self, *extra: str) -> list[str]:
        nginx = shutil.which("nginx") or "/usr/sbin/nginx"
        return [nginx, "-p", str(self.root), "-e", str(self.root / "error.log"), "-c", str(self.root / "nginx.conf"), *extra]

    def start(self) -> None:
        checked = subprocess.run(self.command("-t"), capture_output=True, text=True, timeout=30)
        assert checked.returncode == 0, checked.stderr
        self.proc = subprocess.Popen(self.command("-g", "daemon off;"), stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}:\n{self.error_log()}")
            try:
                if requests.get(f"{self.base}/auth/openapi.json", timeout=2).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"nginx not answering after 30s:\n{self.error_log()}")

    def stop(self) -> None:
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def error_log(self) -> str:
        path = self.root / "error.log"
        return path.read_text(errors="replace")[-4000:] if path.exists() else ""

    def workers(self) -> list[int]:
        assert self.proc is not None
        found = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                if ppid == self.proc.pid:
                    found.append(int(entry.name))
        return found

    def open_temp_files(self) -> list[str]:
        """Files under the temporary paths that a worker holds open (nginx unlinks them at once, so look at the fds)."""
        held = []
        for pid in self.workers():
            fd_dir = Path(f"/proc/{pid}/fd")
            for fd in fd_dir.iterdir() if fd_dir.exists() else ():
                try:
                    target = os.readlink(fd)
                except OSError:
                    continue
                if target.startswith(str(self.temp)):
                    held.append(target)
        return held


@pytest.fixture(scope="module")
def door(system, tmp_path_factory):
    if not (shutil.which("nginx") or Path("/usr/sbin/nginx").exists()):
        pytest.fail("nginx is not installed: run scripts/install-system-tools.sh (Debian's nginx package)")
    front = FrontDoor(tmp_path_factory.mktemp("nginx"), system.ports)
    front.start()
    yield front
    front.stop()


@pytest.fixture
def user_api(door, make_user) -> Api:
    """A fresh user whose client talks to the front door."""
    _, _, api = make_user()
    return Api(door.base, api.token)


def test_the_rendered_template_passes_nginx_t_and_fills_every_name(door):
    rendered = (door.root / "redfile.conf").read_text()
    assert "${" not in rendered
    # nginx's own variables are left for nginx
    assert "$proxy_add_x_forwarded_for" in rendered and "$http_x_request_id" in rendered


@pytest.mark.parametrize(
    ("path", "title"), [("/auth/openapi.json", "auth"), ("/files/openapi.json", "files"), ("/admin/openapi.json", "admin")]
)
def test_each_prefix_reaches_its_service(door, path, title):
    resp = requests.get(door.base + path, timeout=10)
    assert resp.status_code == 200 and title in resp.json()["info"]["title"].lower()


@pytest.mark.parametrize("service", ["auth", "files", "admin"])
def test_each_services_docs_load_whole_through_the_door(door, service):
    types = docs_load_through(door.base, service)
    assert {t for ref, t in types.items() if ref.endswith(".js")} <= {"text/javascript", "application/javascript"}
    assert {t for ref, t in types.items() if ref.endswith(".css")} == {"text/css"}


@pytest.mark.parametrize("path", ["/internal/files", "/internal", "/auth/../internal/users", "/files/%2e%2e/internal/users"])
def test_internal_routes_are_a_json_404_at_the_door(door, path):
    with socket.create_connection(("127.0.0.1", door.port), timeout=10) as sock:  # the path exactly as written
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: door\r\nConnection: close\r\n\r\n".encode())
        raw = b""
        while piece := sock.recv(65536):
            raw += piece
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.split()[1] == b"404", raw[:300]
    assert b"application/json" in head and b'"code":"not_found"' in body


def test_headers_the_services_see(system, door, user_api):
    # A client-sent X-Forwarded-For is kept but not trusted: the service logs the address nginx saw.
    resp = user_api.get("/files", headers={"X-Request-ID": "door-rid-1", "X-Forwarded-For": "203.0.113.9"})
    assert resp.status_code == 200 and resp.headers["X-Request-ID"] == "door-rid-1"
    deadline = time.monotonic() + 10
    mine: list[dict] = []
    while not mine and time.monotonic() < deadline:
        lines = [json.loads(entry) for entry in system.logs().splitlines() if entry.startswith("{")]
        mine = [entry for entry in lines if entry.get("request_id") == "door-rid-1" and entry.get("event") == "request"]
        time.sleep(0.1)
    assert mine and mine[0]["service"] == "files" and mine[0]["remote"] == "127.0.0.1", mine
    # without one, nginx makes the id that the service then uses and echoes
    minted = user_api.get("/files").headers["X-Request-ID"]
    assert re.fullmatch(r"[0-9a-f]{32}", minted)


def test_a_share_link_names_public_url_whatever_door_it_was_made_through(system, door, user_api):
    fid = user_api.post("/texts", json={"name": "t.txt", "content": "hello through the door"}).json()["id"]
    share = user_api.post(f"/files/{fid}/shares", json={})
    assert share.status_code == 201, share.text
    url = share.json()["url"]
    assert url.startswith(f"{system.base}/s/"), url  # make run's PUBLIC_URL: its gateway
    assert requests.get(url.replace(system.base, door.base), timeout=10).content == b"hello through the door"


def test_without_public_url_a_share_link_names_the_front_door(system, user_api, gunicorn, tmp_path):
    """nginx's X-Forwarded-Proto/-Host, trusted behind TRUSTED_PROXY_HOPS=1, when no PUBLIC_URL is set:
    a files process of the same system without one, behind a door of its own."""
    port = re.search(r"private Redis on 127\.0\.0\.1:(\d+)", system.output())
    assert port, system.output()
    dev = json.loads((system.root / "data" / "dev-secrets.json").read_text())
    keys = {k: dev[k] for k in ("APP_SECRET_KEY", "USER_TOKEN_KEYS", "SERVICE_TOKEN_KEYS")}
    env = {**keys, "REDFILE_ENV": "development", "TRUSTED_PROXY_HOPS": "1", "AUTH_URL": f"http://127.0.0.1:{system.ports['auth']}"}
    (files,) = gunicorn("files", f"redis://127.0.0.1:{port.group(1)}/0", **env)
    (tmp_path / "nginx").mkdir()
    front = FrontDoor(tmp_path / "nginx", {**system.ports, "files": files.port})
    front.start()
    try:
        api = Api(front.base, user_api.token)
        fid = api.post("/texts", json={"name": "t.txt", "content": "hello through the door"}).json()["id"]
        share = api.post(f"/files/{fid}/shares", json={})
        assert share.status_code == 201, share.text
        url = share.json()["url"]
        assert url.startswith(f"{front.base}/s/"), url
        assert requests.get(url, timeout=10).content == b"hello through the door"
    finally:
        front.stop()


def test_multipart_chunks_then_complete_then_download(user_api):
    data = os.urandom(3 * 300_000 + 17)
    pieces = [data[i : i + 300_000] for i in range(0, len(data), 300_000)]
    file_id = None
    for idx, piece in enumerate(pieces):
        fields = {"chunk_index": str(idx), "total_chunks": str(len(pieces)), **({"file_id": file_id} if file_id else {})}
        resp = user_api.post("/upload_chunk", data=fields, files={"chunk_data": ("c", piece)})
        assert resp.status_code in (200, 201), resp.text
        file_id = resp.json()["file_id"]
    done = user_api.post("/upload_complete", json={"file_id": file_id, "name": "m.bin", "total_size": len(data)})
    assert done.status_code == 201, done.text
    assert user_api.get(f"/files/{file_id}").content == data


def test_a_chunked_request_body_streams_through(user_api):
    data = os.urandom(2 * MIB + 3)

    def pieces():
        for i in range(0, len(data), 50_000):
            yield data[i : i + 50_000]

    resp = user_api.post(
        "/upload_chunk?chunk_index=0&total_chunks=1", data=pieces(), headers={"Content-Type": "application/octet-stream"}
    )  # requests sends a generator with Transfer-Encoding: chunked
    assert resp.status_code == 201, resp.text
    fid = resp.json()["file_id"]
    assert user_api.post("/upload_complete", json={"file_id": fid, "name": "c.bin", "total_size": len(data)}).status_code == 201
    assert user_api.get(f"/files/{fid}").content == data


def session_upload(api: Api, data: bytes, chunk: int) -> str:
    up = api.post("/uploads", json={"name": "s.bin", "total_size": len(data), "chunk_size": chunk})
    assert up.status_code == 201, up.text
    upload_id = up.json()["id"]
    for idx in range(0, (len(data) + chunk - 1) // chunk):
        put = api.request("PUT", f"/uploads/{upload_id}/chunks/{idx}", data=data[idx * chunk : (idx + 1) * chunk], timeout=60)
        assert put.status_code in (200, 201), put.text
    done = api.post(f"/uploads/{upload_id}/complete", timeout=60)
    assert done.status_code == 201, done.text
    return done.json()["id"]


def test_a_large_download_streams_without_a_temporary_file(door, user_api):
    data = os.urandom(5 * CHUNK + 99)
    file_id = session_upload(user_api, data, CHUNK)
    with user_api.session.get(f"{door.base}/files/{file_id}", headers=user_api.headers(), stream=True, timeout=60) as resp:
        assert resp.status_code == 200 and resp.headers["Content-Length"] == str(len(data))
        digest = hashlib.sha256()
        first = resp.raw.read(MIB)
        digest.update(first)
        # A reader that stops: with proxy buffering nginx would spool the rest to proxy_temp meanwhile.
        time.sleep(1.5)
        assert door.open_temp_files() == []
        for piece in resp.iter_content(MIB):
            digest.update(piece)
    assert digest.hexdigest() == hashlib.sha256(data).hexdigest()


def raw_request_head(door: FrontDoor, method: str, path: str, headers: dict[str, str]) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", door.port), timeout=30)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{door.port}", *(f"{k}: {v}" for k, v in headers.items())]
    sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
    return sock


def read_status(sock: socket.socket, timeout: float) -> int | None:
    """The status of the answer that arrives within timeout seconds, or None."""
    sock.settimeout(timeout)
    try:
        head = sock.recv(65536)
    except TimeoutError:
        return None
    return int(head.split()[1]) if head else None


@pytest.mark.parametrize("framing", ["length", "chunked"])
def test_an_upload_reaches_the_service_while_it_is_still_arriving(door, user_api, framing):
    """No request buffering: the service sees the body (and can refuse it) before the client has sent it all.

    A chunked body streams only when nginx speaks HTTP/1.1 to the service; over HTTP/1.0 it is spooled.
    """
    up = user_api.post("/uploads", json={"name": "early.bin", "total_size": 4 * MIB, "chunk_size": 4 * MIB}).json()
    # no token: the service answers 401 as soon as it sees the request, long before the body is complete
    framing_header = {"Content-Length": str(4 * MIB)} if framing == "length" else {"Transfer-Encoding": "chunked"}
    sock = raw_request_head(door, "PUT", f"/uploads/{up['id']}/chunks/0", framing_header)
    try:
        piece = os.urandom(MIB)
        sock.sendall(piece if framing == "length" else b"%x\r\n%s\r\n" % (len(piece), piece))
        time.sleep(0.5)
        assert door.open_temp_files() == []  # with buffering, nginx would be spooling the body to client_body_temp
        assert read_status(sock, 10) == 401
    finally:
        sock.close()


def test_a_client_that_drops_mid_upload_leaves_no_trace_and_the_upload_finishes(door, system, user_api):
    chunk = MIB + 3
    data = os.urandom(2 * chunk + 5)  # three chunks, the last of 5 bytes
    up = user_api.post("/uploads", json={"name": "cut.bin", "total_size": len(data), "chunk_size": chunk}).json()
    first = user_api.request("PUT", f"/uploads/{up['id']}/chunks/0", data=data[:chunk])
    assert first.status_code in (200, 201), first.text

    # chunk 1: half the declared body, then the connection is gone
    sock = raw_request_head(
        door,
        "PUT",
        f"/uploads/{up['id']}/chunks/1",
        {"Authorization": f"Bearer {user_api.token}", "Content-Length": str(chunk), "Content-Type": "application/octet-stream"},
    )
    sock.sendall(data[chunk : chunk + chunk // 2])
    time.sleep(0.3)
    sock.close()

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        status = user_api.get(f"/uploads/{up['id']}").json()
        if status["missing"] == [1, 2]:
            break
        time.sleep(0.2)
    assert status["missing"] == [1, 2], status  # nothing of the cut chunk was stored
    for port in system.ports.values():
        assert requests.get(f"http://127.0.0.1:{port}/readyz", timeout=10).status_code == 200
    assert user_api.get("/files").status_code == 200

    for idx in (1, 2):
        put = user_api.request("PUT", f"/uploads/{up['id']}/chunks/{idx}", data=data[idx * chunk : (idx + 1) * chunk])
        assert put.status_code in (200, 201), put.text
    done = user_api.post(f"/uploads/{up['id']}/complete")
    assert done.status_code == 201, done.text
    assert user_api.get(f"/files/{done.json()['id']}").content == data


def test_tus_through_the_door_with_a_cut_patch_resumes_to_an_identical_file(door, user_api):
    data = os.urandom(2 * CHUNK + 4321)
    auth = {"Authorization": f"Bearer {user_api.token}"}
    tus = {"Tus-Resumable": "1.0.0"}
    created = requests.post(f"{door.base}/tus/", headers={**auth, **tus, "Upload-Length": str(len(data))}, timeout=10)
    assert created.status_code == 201, created.text
    location = created.headers["Location"]
    assert location.startswith("/tus/")

    # a PATCH of one chunk cut after 3 MiB: the server keeps what it received (whole chunks or a prefix)
    sock = raw_request_head(
        door,
        "PATCH",
        location,
        {**auth, **tus, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0", "Content-Length": str(CHUNK)},
    )
    sock.sendall(data[: 3 * MIB])
    time.sleep(0.3)
    sock.close()

    def offset() -> int:
        resp = requests.head(f"{door.base}{location}", headers={**auth, **tus}, timeout=10)
        assert resp.status_code == 200
        return int(resp.headers["Upload-Offset"])

    deadline = time.monotonic() + 15
    last = -1
    while time.monotonic() < deadline:
        now = offset()
        if now == last:
            break
        last = now
        time.sleep(0.3)
    assert 0 <= last <= 3 * MIB

    # tuspy resumes from the server's offset, one chunk per PATCH (the Ingress's body limit)
    uploader = tus_client.TusClient(f"{door.base}/tus/", headers=auth).uploader(
        file_stream=io.BytesIO(data), url=f"{door.base}{location}", chunk_size=CHUNK, retries=2, retry_delay=1
    )
    assert uploader.offset == last
    uploader.upload()
    assert uploader.offset == len(data)
    assert user_api.get(f"/files/{location.rsplit('/', 1)[-1]}").content == data


def test_a_body_over_the_door_limit_is_a_json_413(door, user_api):
    resp = user_api.post(
        "/upload_chunk?chunk_index=0&total_chunks=1", data=b"x" * (17 * MIB), headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 413
    assert resp.headers["Content-Type"].startswith("application/json")
    assert resp.json()["error"]["code"] == "payload_too_large"


def test_a_body_over_the_service_limit_gets_the_services_own_413(user_api):
    resp = user_api.post(
        "/upload_chunk?chunk_index=0&total_chunks=1", data=b"x" * (12 * MIB), headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 413 and resp.json()["error"]["code"] == "payload_too_large"
    assert resp.headers.get("X-Request-ID")  # the service's answer, not nginx's


def test_a_service_that_is_down_is_a_json_502(tmp_path):
    dead = free_port()
    front = FrontDoor(tmp_path, {"auth": dead, "files": dead, "admin": dead})
    front.proc = subprocess.Popen(front.command("-g", "daemon off;"), stdin=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        resp = None
        while resp is None and time.monotonic() < deadline:
            try:
                resp = requests.get(f"{front.base}/files", timeout=5)
            except requests.ConnectionError:
                time.sleep(0.1)
        assert resp is not None and resp.status_code == 502
        assert resp.json()["error"]["code"] == "bad_gateway"
    finally:
        front.stop()


def test_a_tus_checksum_header_is_checked_through_the_door(door, user_api):
    data = os.urandom(300_000)
    auth = {"Authorization": f"Bearer {user_api.token}", "Tus-Resumable": "1.0.0"}
    created = requests.post(f"{door.base}/tus/", headers={**auth, "Upload-Length": str(len(data))}, timeout=10)
    url = door.base + created.headers["Location"]
    patch = {**auth, "Content-Type": "application/offset+octet-stream", "Upload-Offset": "0"}
    wrong = base64.b64encode(hashlib.sha1(b"not it").digest()).decode()
    assert requests.patch(url, data=data, headers={**patch, "Upload-Checksum": f"sha1 {wrong}"}, timeout=30).status_code == 460
    right = base64.b64encode(hashlib.sha1(data).digest()).decode()
    done = requests.patch(url, data=data, headers={**patch, "Upload-Checksum": f"sha1 {right}"}, timeout=30)
    assert done.status_code == 204 and done.headers["Upload-Offset"] == str(len(data))
