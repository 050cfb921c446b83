"""Issue 9's soak: concurrent clients doing everything at once, then proof that nothing drifted.

Real gunicorn processes -- auth, two replicas of files (with their background
sweep on) and admin -- on the test's private Redis.  ``SOAK_CLIENTS`` threads
(default 6; two per user, so each user's quota, holdings and indexes see
concurrent requests) do random operations for ``SOAK_SECONDS`` (default 20):
session uploads with chunks in random order and repeated, some aborted and some
left incomplete; the seed's ``/upload_chunk``; tus uploads (some left
incomplete); one-request files and texts; whole and ranged downloads checked
against what was sent; renames; deletes; share links created, downloaded and
revoked; recipients added, read and removed.  Some files are handed to a pool
that every thread of their user races on, and now and then a *storm* fires
downloads, a zip, a share link, a recipient, a rename and two deletes at one
file at the same instant (a 404, or a body cut short, is then the only
allowed failure -- never a 5xx or a wrong byte).  One user has a small quota,
so refusals (413) happen too.  Halfway, the consistency check runs through the
admin API while the traffic goes on: it must find no error.

Afterwards: no 5xx was ever answered; every completed file downloads
byte-identical; each user's usage (files' ``/quota`` and the admin's usage view)
equals the sum of their files' sizes and their reservations those of their open
uploads; their listing is exactly their files; and the consistency checker --
through ``GET /admin/consistency?deep=true&strict=true`` and as the
``redfile-check`` command -- reports clean, with nothing pending.  The RNG is
seeded (``SOAK_SEED``, printed) so a failing run can be replayed.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
import zipfile
from collections import Counter
from dataclasses import dataclass, field

import blake3
import google_crc32c
import pytest
import requests

from redfile_common.app import domain_of
from redfile_dev.testing import auth_header
from redfile_dev.testing import test_env as service_env
from redfile_files.domain import FilesDomain
from redfile_files.storage import keys

SECONDS = float(os.environ.get("SOAK_SECONDS", "20"))
CLIENTS = int(os.environ.get("SOAK_CLIENTS", "6"))
SEED = int(os.environ.get("SOAK_SEED") or random.SystemRandom().randrange(2**32))
CHUNK = 16 * 1024
SMALL_QUOTA = 1_000_000
ROOT_PASSWORD = "root-password-" + "s" * 10
CHEAP_ARGON2 = {"ARGON2_MEMORY_KIB": "1024", "ARGON2_TIME_COST": "1", "ARGON2_PARALLELISM": "1"}
ENCRYPTION = {"ENCRYPTION_KEYS": "soak1:" + base64.b64encode(b"k" * 32).decode()}  # so deep checks decrypt
FILES_ENV = {
    "MAX_CHUNK_BYTES": str(CHUNK),
    "DEFAULT_CHUNK_BYTES": str(CHUNK),
    "MAX_SINGLE_UPLOAD_BYTES": str(4 * CHUNK),
    "SWEEP_INTERVAL": "2",
    "GUNICORN_THREADS": "8",
    **ENCRYPTION,
}
TIMEOUT = 30
TUS = {"Tus-Resumable": "1.0.0"}


class Unexpected(AssertionError):
    pass


def checksums_of(data: bytes, chunk: int, sha256: bool) -> dict:
    """What a file of these bytes, uploaded in chunks of ``chunk``, says of its checksums: the CRC32C of the whole,
    the BLAKE3 composite (BLAKE3 of the chunks' raw BLAKE3 digests, ``-<chunks>``), and its SHA-256 only when the
    upload declared or asked for it (else null)."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    outer = blake3.blake3()
    for piece in pieces:
        outer.update(blake3.blake3(piece).digest())
    return {
        "size": len(data),
        "crc32c": f"{google_crc32c.value(data):08x}",
        "composite_blake3": f"{outer.hexdigest()}-{len(pieces)}",
        "sha256": hashlib.sha256(data).hexdigest() if sha256 else None,
    }


def file_checksums(meta: dict) -> dict:
    return {k: meta[k] for k in ("size", "crc32c", "composite_blake3", "sha256")}


@dataclass
class Stored:
    data: bytes
    name: str | None  # None: renamed by racing threads
    shares: list = field(default_factory=list)  # (share id, token)
    recipients: set = field(default_factory=set)


@dataclass
class Client:
    """One soak thread: its user, its own files (no other thread touches them) and what it holds open."""

    n: int
    user: str
    rng: random.Random
    session: requests.Session
    files: dict = field(default_factory=dict)  # id -> Stored
    open: list = field(default_factory=list)  # its incomplete uploads: (path to DELETE, bytes they hold reserved)
    ops: Counter = field(default_factory=Counter)


class Soak:
    def __init__(self, urls: dict, tokens: dict, small_quota_user: str) -> None:
        self.urls = urls
        self.tokens = tokens
        self.small = small_quota_user
        self.statuses: Counter = Counter()
        self.failures: list[str] = []
        self.lock = threading.Lock()
        # per user, files every thread of that user may download, rename, share or delete at once
        self.contested: dict[str, dict[str, Stored]] = {user: {} for user in tokens}
        self.races: Counter = Counter()

    # -- HTTP with bookkeeping ----------------------------------------------------------
    def call(
        self, c: Client, method: str, path: str, *, expect=(200,), user: str | None = None, base: str | None = None, allow=(), **kw
    ) -> requests.Response:
        base = base or c.rng.choice(self.urls["files"])
        headers = {**auth_header(self.tokens[user or c.user]), **kw.pop("headers", {})}
        resp = c.session.request(method, base + path, headers=headers, timeout=TIMEOUT, **kw)
        with self.lock:
            self.statuses[resp.status_code] += 1
        if resp.status_code >= 500 or (resp.status_code not in expect and resp.status_code not in allow):
            raise Unexpected(f"{method} {path} -> {resp.status_code} {resp.text[:300]} (seed {SEED})")
        return resp

    def refused(self, resp: requests.Response) -> bool:
        """A 413 quota refusal: expected for the user with the small quota only."""
        return bool(resp.status_code == 413 and resp.json()["error"]["code"] == "quota_exceeded")

    # -- operations ----------------------------------------------------------------------
    def session_upload(self, c: Client, fate: str = "complete") -> None:
        data = c.rng.randbytes(c.rng.randrange(1, 5 * CHUNK))
        # its SHA-256: none (the default), asked for, or declared (verified at completion)
        sha = c.rng.choice(["none", "asked", "declared"])
        body = {"name": f"s{c.n}.bin", "total_size": len(data)}
        body |= {"none": {}, "asked": {"checksum_algorithm": "sha256"}, "declared": {"sha256": hashlib.sha256(data).hexdigest()}}[sha]
        resp = self.call(c, "POST", "/uploads", expect=(201,), allow=(413,), json=body)
        if resp.status_code == 413 and self.refused(resp):
            return
        up = resp.json()
        assert up["checksum_algorithm"] == (None if sha == "none" else "sha256"), (sha, up)
        order = list(range(up["total_chunks"]))
        c.rng.shuffle(order)
        if fate != "complete":
            order = order[: c.rng.randrange(0, len(order))]
        for i in order + order[:1]:  # the first chunk twice: a retry is harmless
            piece = data[i * CHUNK : (i + 1) * CHUNK]
            headers = {"Content-Type": "application/octet-stream", "X-Checksum-SHA256": hashlib.sha256(piece).hexdigest()}
            self.call(c, "PUT", f"/uploads/{up['id']}/chunks/{i}", expect=(200, 201), data=piece, headers=headers)
        if fate == "abort":
            self.call(c, "DELETE", f"/uploads/{up['id']}", expect=(204,))
        elif fate == "leave":
            c.open.append((f"/uploads/{up['id']}", len(data)))
        else:
            done = self.call(c, "POST", f"/uploads/{up['id']}/complete", expect=(201,)).json()
            assert file_checksums(done) == checksums_of(data, up["chunk_size"], sha != "none"), (sha, done)
            c.files[up["id"]] = Stored(data, f"s{c.n}.bin")

    def seed_upload(self, c: Client, leave: bool = False) -> None:
        data = c.rng.randbytes(c.rng.randrange(1, 3 * CHUNK))
        pieces = [data[i : i + CHUNK] for i in range(0, len(data), CHUNK)]
        order = list(range(len(pieces)))
        c.rng.shuffle(order)
        if leave:
            order = order[: max(1, len(order) - 1)]
        file_id, stored = None, 0
        for i in order:
            form = {"chunk_index": str(i), "total_chunks": str(len(pieces)), **({"file_id": file_id} if file_id else {})}
            resp = self.call(c, "POST", "/upload_chunk", expect=(200, 201), allow=(413,), data=form, files={"chunk_data": ("c", pieces[i])})
            if resp.status_code == 413 and self.refused(resp):
                if file_id:  # part-way: give its bytes back
                    self.abort_seed(c, file_id)
                return
            file_id = resp.json()["file_id"]
            stored += len(pieces[i])
        if leave and len(order) < len(pieces):
            c.open.append((f"/uploads/{file_id}", stored))
            return
        done = self.call(
            c, "POST", "/upload_complete", expect=(201,), json={"file_id": file_id, "name": f"seed{c.n}.bin", "total_size": len(data)}
        )
        assert file_checksums(done.json()) == checksums_of(data, CHUNK, False), done.json()  # seed uploads: no SHA-256
        c.files[file_id] = Stored(data, f"seed{c.n}.bin")

    def abort_seed(self, c: Client, file_id: str) -> None:
        self.call(c, "DELETE", f"/uploads/{file_id}", expect=(204,))

    def tus_upload(self, c: Client, leave: bool = False) -> None:
        data = c.rng.randbytes(c.rng.randrange(1, 3 * CHUNK))
        resp = self.call(
            c,
            "POST",
            "/tus/",
            expect=(201,),
            allow=(413,),
            headers={**TUS, "Upload-Length": str(len(data)), "Upload-Metadata": "filename dHVzLmJpbg=="},
        )
        if resp.status_code == 413:
            return
        location = resp.headers["Location"]
        offset, end = 0, (c.rng.randrange(0, len(data)) if leave else len(data))
        while offset < end:
            step = min(end - offset, c.rng.choice([CHUNK, CHUNK // 3 + 1, 2 * CHUNK]))
            headers = {**TUS, "Upload-Offset": str(offset), "Content-Type": "application/offset+octet-stream"}
            self.call(c, "PATCH", location, expect=(204,), data=data[offset : offset + step], headers=headers)
            offset += step
        if leave:
            c.open.append((location, len(data)))
        else:
            c.files[location.rsplit("/", 1)[1]] = Stored(data, "tus.bin")

    def one_request(self, c: Client) -> None:
        if c.rng.random() < 0.5:
            data = c.rng.randbytes(c.rng.randrange(0, 4 * CHUNK))
            resp = self.call(c, "POST", "/files", expect=(201,), allow=(413,), files={"file": (f"one{c.n}.bin", data)})
            name = f"one{c.n}.bin"
        else:
            text = "".join(c.rng.choice("abcdefé€\n") for _ in range(c.rng.randrange(1, 3000)))
            data, name = text.encode(), f"t{c.n}.txt"
            resp = self.call(c, "POST", "/texts", expect=(201,), allow=(413,), json={"name": name, "content": text})
        if resp.status_code == 201:
            c.files[resp.json()["id"]] = Stored(data, name)

    def download(self, c: Client) -> None:
        fid, st = c.rng.choice(sorted(c.files.items()))
        if st.data and c.rng.random() < 0.4:
            a = c.rng.randrange(len(st.data))
            b = c.rng.randrange(a, len(st.data))
            resp = self.call(c, "GET", f"/files/{fid}", expect=(206,), headers={"Range": f"bytes={a}-{b}"})
            assert resp.content == st.data[a : b + 1], f"range {a}-{b} of {fid} differs (seed {SEED})"
        else:
            assert self.call(c, "GET", f"/files/{fid}").content == st.data, f"{fid} differs (seed {SEED})"

    def rename(self, c: Client) -> None:
        fid, st = c.rng.choice(sorted(c.files.items()))
        st.name = f"renamed-{c.rng.randrange(10**6)}.bin"
        assert self.call(c, "POST", f"/files/{fid}/rename", json={"new_name": st.name}).json()["name"] == st.name

    def delete(self, c: Client) -> None:
        fid = c.rng.choice(sorted(c.files))
        self.call(c, "DELETE", f"/files/{fid}", expect=(204,))
        del c.files[fid]
        self.call(c, "GET", f"/files/{fid}", expect=(404,))

    def share(self, c: Client) -> None:
        fid, st = c.rng.choice(sorted(c.files.items()))
        link = self.call(c, "POST", f"/files/{fid}/shares", expect=(201,), json={"max_downloads": 5}).json()
        st.shares.append((link["id"], link["token"]))
        base = c.rng.choice(self.urls["files"])
        resp = c.session.get(f"{base}/s/{link['token']}", timeout=TIMEOUT)
        with self.lock:
            self.statuses[resp.status_code] += 1
        assert resp.status_code == 200 and resp.content == st.data, f"link of {fid}: {resp.status_code} (seed {SEED})"
        if c.rng.random() < 0.3:
            self.call(c, "DELETE", f"/shares/{link['id']}", expect=(204,))
            st.shares.pop()

    def recipient(self, c: Client) -> None:
        fid, st = c.rng.choice(sorted(c.files.items()))
        other = c.rng.choice(sorted(u for u in self.tokens if u != c.user))
        if other in st.recipients and c.rng.random() < 0.5:
            self.call(c, "DELETE", f"/files/{fid}/recipients/{other}", expect=(204,))
            st.recipients.discard(other)
            return
        self.call(c, "POST", f"/files/{fid}/recipients", expect=(201,), json={"username": other})
        st.recipients.add(other)
        assert self.call(c, "GET", f"/shared-with-me/{fid}", user=other).content == st.data

    def abort_left(self, c: Client) -> None:
        """Give up one of the uploads left incomplete (a tus termination, or an abort)."""
        path, _ = c.open.pop(c.rng.randrange(len(c.open)))
        self.call(c, "DELETE", path, expect=(204,), headers=TUS if path.startswith("/tus/") else {})

    def listing(self, c: Client) -> None:
        self.call(c, "GET", "/files?limit=200")
        self.call(c, "GET", "/quota")

    # -- contested files: the threads of one user race on them ---------------------------
    def contest(self, c: Client) -> None:
        """Hand one of the thread's files to the user's contested pool."""
        fid = c.rng.choice(sorted(c.files))
        with self.lock:
            self.contested[c.user][fid] = c.files.pop(fid)

    def pick_contested(self, c: Client) -> tuple[str, Stored] | None:
        with self.lock:
            pool = self.contested[c.user]
            return c.rng.choice(sorted(pool.items())) if pool else None

    def storm(self, c: Client) -> None:
        """Several requests on one contested file at the same instant: downloads, a link, a rename, a delete."""
        picked = self.pick_contested(c)
        if picked is None:
            return
        actions = ["download", "download", "share", "rename", "delete", "download", "zip", "recipient", "delete"]
        barrier = threading.Barrier(len(actions), timeout=TIMEOUT)
        errors: list[BaseException] = []

        def one(action: str, seed: int) -> None:
            sub = Client(c.n, c.user, random.Random(seed), requests.Session())
            try:
                barrier.wait()
                self.race(sub, picked, action)
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=one, args=(a, c.rng.randrange(2**32))) for a in actions]
        for t in threads:
            t.start()
        for t in threads:
            t.join(TIMEOUT * 2)
        if errors:
            raise errors[0]

    def race(self, c: Client, picked: tuple[str, Stored] | None = None, action: str | None = None) -> None:
        picked = picked or self.pick_contested(c)
        if picked is None:
            return
        fid, st = picked
        action = action or c.rng.choice(["download", "download", "rename", "share", "delete"])
        if action == "download":
            try:
                resp = self.call(c, "GET", f"/files/{fid}", expect=(200, 404), stream=False)
            except requests.RequestException:  # cut short: allowed only when the file went away meanwhile
                self.races["download_cut"] += 1
                self.call(c, "GET", f"/files/{fid}/meta", expect=(404,))
                return
            if resp.status_code == 404:
                self.races["download_404"] += 1
                self.call(c, "GET", f"/files/{fid}/meta", expect=(404,))  # gone for good, not a glitch
            else:
                assert resp.content == st.data, f"contested {fid} differs (seed {SEED})"
        elif action == "rename":
            resp = self.call(c, "POST", f"/files/{fid}/rename", expect=(200, 404), json={"new_name": f"raced-{c.n}.bin"})
            if resp.status_code == 200:
                st.name = None  # renames race: whichever ran last names it
        elif action == "share":
            resp = self.call(c, "POST", f"/files/{fid}/shares", expect=(201, 404), json={})
            if resp.status_code == 201:
                try:
                    link = c.session.get(f"{c.rng.choice(self.urls['files'])}/s/{resp.json()['token']}", timeout=TIMEOUT)
                except requests.RequestException:  # cut short: allowed only when the file went away meanwhile
                    self.races["download_cut"] += 1
                    self.call(c, "GET", f"/files/{fid}/meta", expect=(404,))
                    return
                with self.lock:
                    self.statuses[link.status_code] += 1
                if link.status_code >= 500:
                    raise Unexpected(f"link of contested {fid}: {link.status_code} {link.text[:200]} (seed {SEED})")
                assert link.status_code == 404 or link.content == st.data, (link.status_code, fid)
        elif action == "zip":
            try:
                resp = self.call(c, "POST", "/files/zip", expect=(200, 404), json={"file_ids": [fid], "name": "z.zip"})
            except requests.RequestException:  # cut short: the file went away while it was zipped
                self.call(c, "GET", f"/files/{fid}/meta", expect=(404,))
                return
            if resp.status_code == 200:
                with zipfile.ZipFile(io.BytesIO(resp.content)) as z:
                    assert z.read(z.namelist()[0]) == st.data, f"zip of contested {fid} (seed {SEED})"
        elif action == "recipient":
            other = c.rng.choice(sorted(u for u in self.tokens if u != c.user))
            if self.call(c, "POST", f"/files/{fid}/recipients", expect=(201, 404), json={"username": other}).status_code == 201:
                try:
                    got = self.call(c, "GET", f"/shared-with-me/{fid}", expect=(200, 404), user=other)
                except requests.RequestException:
                    self.call(c, "GET", f"/files/{fid}/meta", expect=(404,))
                    return
                assert got.status_code == 404 or got.content == st.data, f"shared {fid} (seed {SEED})"
        else:
            resp = self.call(c, "DELETE", f"/files/{fid}", expect=(204, 404))
            with self.lock:
                self.races[f"delete_{resp.status_code}"] += 1
                if resp.status_code == 204:
                    assert self.contested[c.user].pop(fid, None) is not None, f"{fid} deleted twice (seed {SEED})"

    def step(self, c: Client) -> None:
        ops = [
            ("session", 6),
            ("session_abort", 2),
            ("session_leave", 1),
            ("seed", 3),
            ("seed_leave", 1),
            ("tus", 2),
            ("tus_leave", 1),
            ("one", 4),
            ("listing", 1),
        ]
        if c.open:
            ops += [("abort_left", 2)]
        if c.files:
            ops += [("download", 6), ("rename", 2), ("delete", 3), ("share", 2), ("recipient", 2), ("contest", 1)]
        ops += [("race", 4), ("storm", 1)]
        name = c.rng.choices([o for o, _ in ops], [w for _, w in ops])[0]
        c.ops[name] += 1
        {
            "session": lambda: self.session_upload(c),
            "session_abort": lambda: self.session_upload(c, "abort"),
            "session_leave": lambda: self.session_upload(c, "leave"),
            "seed": lambda: self.seed_upload(c),
            "seed_leave": lambda: self.seed_upload(c, leave=True),
            "tus": lambda: self.tus_upload(c),
            "tus_leave": lambda: self.tus_upload(c, leave=True),
            "one": lambda: self.one_request(c),
            "listing": lambda: self.listing(c),
            "download": lambda: self.download(c),
            "rename": lambda: self.rename(c),
            "delete": lambda: self.delete(c),
            "share": lambda: self.share(c),
            "recipient": lambda: self.recipient(c),
            "abort_left": lambda: self.abort_left(c),
            "contest": lambda: self.contest(c),
            "race": lambda: self.race(c),
            "storm": lambda: self.storm(c),
        }[name]()

    def run(self, c: Client, until: float) -> None:
        try:
            while time.monotonic() < until and not self.failures:
                self.step(c)
        except Exception as exc:
            with self.lock:
                self.failures.append(f"client {c.n} ({c.user}): {type(exc).__name__}: {exc}")


@pytest.fixture
def system(redis_url, gunicorn):
    (auth,) = gunicorn("auth", redis_url, ADMIN_USERS="root", ADMIN_PASSWORD=ROOT_PASSWORD, **CHEAP_ARGON2)
    files = gunicorn("files", redis_url, 2, AUTH_URL=auth.url, **FILES_ENV)  # files asks auth who a recipient is
    (admin,) = gunicorn("admin", redis_url, AUTH_URL=auth.url, FILES_URL=files[0].url, SERVICE_TIMEOUT="30")
    return {"auth": auth.url, "files": [f.url for f in files], "admin": admin.url}


def login(urls, username, password) -> str:
    resp = requests.post(f"{urls['auth']}/auth/login", json={"username": username, "password": password}, timeout=TIMEOUT)
    assert resp.status_code == 200, resp.text
    return resp.json()["access_token"]


def list_all(base: str, token: str) -> list[dict]:
    items, cursor = [], None
    for _ in range(10_000):  # bounded: pages of 200
        resp = requests.get(
            f"{base}/files", headers=auth_header(token), params={"limit": 200, **({"cursor": cursor} if cursor else {})}, timeout=TIMEOUT
        )
        assert resp.status_code == 200, resp.text
        items += resp.json()["items"]
        cursor = resp.json()["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("the listing never ended")


def admin_check(urls, root, **params) -> dict:
    resp = requests.get(f"{urls['admin']}/admin/consistency", headers=root, params=params, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()


def test_soak(system, redis_url, tmp_path):
    print(f"soak: seed={SEED} seconds={SECONDS} clients={CLIENTS} (replay with SOAK_SEED={SEED})")
    root = auth_header(login(system, "root", ROOT_PASSWORD))
    users = [f"soak{i}" for i in range(max(1, CLIENTS // 2))]
    tokens = {}
    for user in users:
        created = requests.post(
            f"{system['admin']}/admin/users", headers=root, json={"username": user, "password": f"{user}-password-x"}, timeout=TIMEOUT
        )
        assert created.status_code == 201, created.text
        tokens[user] = login(system, user, f"{user}-password-x")
    small = users[-1]
    quota = requests.put(f"{system['admin']}/admin/users/{small}/quota", headers=root, json={"quota_bytes": SMALL_QUOTA}, timeout=TIMEOUT)
    assert quota.status_code == 200, quota.text

    soak = Soak(system, tokens, small)
    rng = random.Random(SEED)
    clients = [Client(n, users[n % len(users)], random.Random(rng.randrange(2**32)), requests.Session()) for n in range(CLIENTS)]
    started = time.monotonic()
    until = started + SECONDS
    threads = [threading.Thread(target=soak.run, args=(c, until), name=f"soak-{c.n}") for c in clients]
    for t in threads:
        t.start()
    time.sleep(SECONDS / 2)
    live = admin_check(system, root)  # while the traffic goes on
    for t in threads:
        t.join(timeout=SECONDS + 120)
    elapsed = time.monotonic() - started
    assert not any(t.is_alive() for t in threads), f"a client is stuck (seed {SEED})"
    ops = sum((c.ops for c in clients), Counter())
    print(
        f"soak: {sum(ops.values())} operations in {elapsed:.1f} s: {dict(sorted(ops.items()))}; statuses {dict(sorted(soak.statuses.items()))};"
        f" races {dict(soak.races)}"
    )
    assert soak.failures == [], soak.failures
    assert not [s for s in soak.statuses if s >= 500], soak.statuses
    assert sum(ops.values()) >= CLIENTS * 5, ops  # it did work
    assert live["complete"] and live["errors"] == 0, json.dumps(live["problems"], indent=1)

    # every completed file is byte-identical, listed, and counted exactly once in its owner's usage
    owned = [(c.user, fid, st) for c in clients for fid, st in c.files.items()]
    owned += [(user, fid, st) for user, pool in soak.contested.items() for fid, st in pool.items()]
    for user, fid, st in owned:
        resp = requests.get(f"{system['files'][0]}/files/{fid}", headers=auth_header(tokens[user]), timeout=TIMEOUT)
        assert resp.status_code == 200 and resp.content == st.data, f"{fid} of {user} (seed {SEED})"
    for user in users:
        mine = [c for c in clients if c.user == user]
        files = {fid: st for c in mine for fid, st in c.files.items()} | soak.contested[user]
        expected_used = sum(len(st.data) for st in files.values())
        expected_reserved = sum(n for c in mine for _, n in c.open)
        q = requests.get(f"{system['files'][1]}/quota", headers=auth_header(tokens[user]), timeout=TIMEOUT).json()
        assert (q["used_bytes"], q["reserved_bytes"]) == (expected_used, expected_reserved), (user, q, SEED)
        usage = requests.get(f"{system['admin']}/admin/users/{user}/usage", headers=root, timeout=TIMEOUT).json()
        assert usage["bytes_stored"] == expected_used and usage["files"] == len(files), (user, usage, SEED)
        listed = list_all(system["files"][0], tokens[user])
        assert {f["id"]: f["size"] for f in listed} == {fid: len(st.data) for fid, st in files.items()}, (user, SEED)
        names = {f["id"]: f["name"] for f in listed}
        assert all(names[fid] == st.name for fid, st in files.items() if st.name is not None), (user, SEED)

    # the checker, through the admin API and as the operators' command, finds nothing
    report = admin_check(system, root, deep="true", strict="true")
    assert report["ok"], json.dumps({k: report[k] for k in ("counts", "problems", "pending")}, indent=1)
    assert report["pending"] == [] and report["errors"] == report["stale"] == 0
    assert report["summary"]["files"] == len(owned)
    assert report["summary"]["bytes_verified"] == sum(len(st.data) for _, _, st in owned)
    rows = {row["user"]: row for row in report["users"]}
    for user in users:
        assert rows[user]["used"] == rows[user]["charged"] == rows[user]["files_bytes"], rows[user]
        assert rows[user]["reserved"] == rows[user]["reservations"] >= rows[user]["uploads_min_bytes"], rows[user]
    command = shutil.which("redfile-check", path=os.path.dirname(sys.executable)) or "redfile-check"
    done = subprocess.run(
        [command, "--deep", "--strict", "--summary"],
        env={**os.environ, **service_env(redis_url, SERVICE_NAME="files", **ENCRYPTION)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-2000:]
    assert json.loads(done.stdout)["ok"] is True
    print(f"soak: checked {report['summary']} in {report['seconds']} s (admin) and by redfile-check")


# -- what the soak found ------------------------------------------------------------------------
def test_a_download_racing_a_delete_is_a_404_not_corrupt_data(redis_url, redis_client):
    """The soak's storms caught GET /files/<id> answering 500 stored_data_corrupt ("A chunk of this file is
    missing."), counted as a storage checksum failure, when a delete landed between reading the file's record
    and its first chunk.  Now: 404 before the headers; cut short (never wrong bytes) after them; not counted."""
    from prometheus_client import CollectorRegistry

    from redfile_common.errors import ApiError
    from redfile_common.product_metrics import FilesMetrics
    from redfile_dev.testing import settings_overrides, user_token
    from redfile_files import create_app
    from redfile_files.catalogue.downloads import download_response
    from redfile_files.catalogue.reader import FileGone

    app = create_app(**settings_overrides(redis_url, max_chunk_bytes=64, sweep_interval=0))
    domain = domain_of(FilesDomain, app)
    registry = CollectorRegistry()
    domain.reader.metrics = FilesMetrics("files", registry)
    alice = auth_header(user_token(app.extensions["redfile"].settings, redis_client, "alice"))
    client = app.test_client()
    data = os.urandom(300)
    fid = client.post("/files", headers=alice, data={"file": (__import__("io").BytesIO(data), "a.bin")}).json["id"]
    record = domain.catalogue.get_file(None, fid)
    chunks = domain.reader.read_chunks(record)  # the download has its record ...
    first = next(chunks)
    domain.catalogue.delete(None, fid)  # ... a delete lands ...
    with pytest.raises(FileGone):  # ... and the rest of the body is cut short
        b"".join(chunks)
    with app.test_request_context(), pytest.raises(ApiError) as caught:
        download_response(record, domain.reader.read_chunks(record))  # not started yet: a clean 404
    assert caught.value.code == "file_not_found" and caught.value.status == 404
    assert first == data[:64]
    failures = registry.get_sample_value("redfile_files_checksum_failures_total", {"service": "files", "source": "storage"})
    assert not failures


def test_two_deletes_of_one_file_racing_release_its_bytes_at_once(redis_url, redis_client):
    """The soak caught a user's usage still counting a deleted file: delete A removed it, delete B took a
    newer lease, found it gone and answered 404, and A's last step then yielded to B's lease -- so the
    charge stayed until B's lease ran out (120 s) and a sweep came.  Now B settles the id at once."""
    from redfile_dev.testing import settings_overrides, user_token
    from redfile_files import create_app

    app = create_app(**settings_overrides(redis_url, max_chunk_bytes=64, sweep_interval=0))
    domain = domain_of(FilesDomain, app)
    alice = auth_header(user_token(app.extensions["redfile"].settings, redis_client, "alice"))
    fid = app.test_client().post("/texts", headers=alice, json={"name": "t.txt", "content": "x" * 100}).json["id"]
    assert domain.catalogue.quota("alice").used_bytes == 100
    lease_a = domain.storage.ledger.lease("alice", fid)  # delete A: its lease, then its fenced step
    assert domain.storage.files.delete_file(fid, not_after_us=lease_a.fence, only_owner="alice") == ("alice", 100)
    assert domain.catalogue.remove("alice", fid) is False  # delete B, in between: the file is gone (a 404)
    domain.storage.ledger.unindex_global(fid)  # delete A's last steps: its apply yields to B's newer lease
    assert domain.storage.ledger.apply("alice", fid, expected=lease_a.score, holding=None, index_ms=None, due_us=None) is None
    assert domain.storage.ledger.quota("alice").used == 0  # released now, not 120 s later
    assert redis_client.zscore(keys.due("alice"), fid) is None and redis_client.hget(keys.held("alice"), fid) is None
