"""tus across real gunicorn replicas on one Redis: any replica continues any upload, races and crashes included."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

from .test_replicas import CHUNK, headers, replicas  # noqa: F401 - fixtures

TUS = {"Tus-Resumable": "1.0.0"}
OCTET = {"Content-Type": "application/offset+octet-stream"}


def create(base, auth, length) -> str:
    resp = requests.post(f"{base}/tus/", headers={**auth, **TUS, "Upload-Length": str(length)}, timeout=10)
    assert resp.status_code == 201, resp.text
    return base + resp.headers["Location"]


def offset(url, auth) -> int:
    resp = requests.head(url, headers={**auth, **TUS}, timeout=10)
    assert resp.status_code == 200, resp.status_code
    return int(resp.headers["Upload-Offset"])


def on(replica, url: str) -> str:
    """The same upload URL, through another replica."""
    return replica.url + url[url.index("/tus/") :]


def test_racing_patches_through_two_processes_one_wins(replicas, headers):  # noqa: F811
    one, two = replicas(2)
    data = [os.urandom(3 * CHUNK + 7), os.urandom(3 * CHUNK + 7)]
    url = create(one.url, headers, 3 * CHUNK + 7)
    start = threading.Barrier(2)

    def send(i):
        start.wait(timeout=10)
        target = on((one, two)[i], url)
        return requests.patch(target, headers={**headers, **TUS, **OCTET, "Upload-Offset": "0"}, data=data[i], timeout=30).status_code

    with ThreadPoolExecutor(2) as pool:
        statuses = list(pool.map(send, [0, 1]))
    assert sorted(statuses) == [204, 409]
    winner = statuses.index(204)
    assert requests.get(on(two, url), headers=headers, timeout=30).content == data[winner]


def test_a_replica_killed_mid_patch_the_other_resumes_to_an_identical_file(replicas, headers):  # noqa: F811
    one, two = replicas(2)
    data = os.urandom(5 * CHUNK + 1000)
    url = create(one.url, headers, len(data))
    sent = threading.Event()
    release = threading.Event()

    def body():
        yield data[: 3 * CHUNK + 500]  # three whole chunks and a bit
        sent.set()
        release.wait(timeout=30)  # the process dies meanwhile
        yield data[3 * CHUNK + 500 :]

    def send():
        with contextlib.suppress(requests.RequestException):
            requests.patch(url, headers={**headers, **TUS, **OCTET, "Upload-Offset": "0"}, data=body(), timeout=30)

    sender = threading.Thread(target=send, daemon=True)
    sender.start()
    assert sent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while offset(on(two, url), headers) < 3 * CHUNK and time.monotonic() < deadline:
        time.sleep(0.05)
    one.kill()
    release.set()
    sender.join(timeout=30)
    resumed = offset(on(two, url), headers)
    assert resumed >= 3 * CHUNK  # every whole chunk the dead process had read was put in place
    resp = requests.patch(on(two, url), headers={**headers, **TUS, **OCTET, "Upload-Offset": str(resumed)}, data=data[resumed:], timeout=30)
    assert resp.status_code == 204 and resp.headers["Upload-Offset"] == str(len(data))
    assert requests.get(on(two, url), headers=headers, timeout=30).content == data
