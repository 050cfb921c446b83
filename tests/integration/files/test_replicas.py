"""Many replicas, one truth: real gunicorn files processes on one real Redis.

* chunks of one upload written through two processes at once give a correct file;
* two completes racing through two processes give exactly one file;
* a replica killed (SIGKILL) in the middle of a chunk loses nothing it acknowledged.
"""

from __future__ import annotations

import os
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from threading import Barrier

import pytest
import requests

from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

CHUNK = 64 * 1024


@pytest.fixture
def replicas(redis_url, gunicorn):
    """``replicas(n)``: n real gunicorn files processes on the test's Redis."""
    return lambda n: gunicorn("files", redis_url, n, MAX_CHUNK_BYTES=str(CHUNK))


@pytest.fixture
def headers(redis_url, redis_client):
    settings = make_settings(FilesSettings, redis_url)
    return auth_header(user_token(settings, redis_client, "alice"))


def create(url, headers, size, name="f.bin"):
    resp = requests.post(f"{url}/uploads", headers=headers, json={"name": name, "total_size": size, "chunk_size": CHUNK}, timeout=10)
    assert resp.status_code == 201, resp.text
    return resp.json()


def put(url, headers, upload_id, index, data):
    return requests.put(f"{url}/uploads/{upload_id}/chunks/{index}", headers=headers, data=data, timeout=30)


def test_two_processes_writing_one_upload_at_once(replicas, headers):
    a, b = replicas(2)
    data = os.urandom(CHUNK * 24 + 1234)
    up = create(a.url, headers, len(data))
    n = up["total_chunks"]
    # every chunk twice, once through each process, in an interleaved order, eight at a time
    sends = [(i, (a, b)[(i + k) % 2]) for k in range(2) for i in (list(range(0, n, 2)) + list(range(1, n, 2)))[:: 1 if k == 0 else -1]]

    def send(job):
        index, replica = job
        return put(replica.url, headers, up["id"], index, data[index * CHUNK : (index + 1) * CHUNK]).status_code

    with ThreadPoolExecutor(8) as pool:
        codes = list(pool.map(send, sends))
    assert set(codes) <= {200, 201} and codes.count(201) == n  # each chunk stored exactly once
    done = requests.post(f"{b.url}/uploads/{up['id']}/complete", headers=headers, timeout=30)
    assert done.status_code == 201, done.text
    assert requests.get(f"{a.url}/files/{up['id']}", headers=headers, timeout=30).content == data


def test_completes_racing_through_two_processes_make_exactly_one_file(replicas, headers):
    a, b = replicas(2)
    ids = []
    for round_ in range(6):
        data = os.urandom(CHUNK + round_)
        up = create(a.url, headers, len(data), name=f"race{round_}")
        for i in range(up["total_chunks"]):
            assert put(a.url, headers, up["id"], i, data[i * CHUNK : (i + 1) * CHUNK]).status_code == 201
        barrier = Barrier(4)

        def complete(replica, barrier=barrier, upload_id=up["id"]):
            barrier.wait()
            return requests.post(f"{replica.url}/uploads/{upload_id}/complete", headers=headers, timeout=30).status_code

        with ThreadPoolExecutor(4) as pool:
            codes = list(pool.map(complete, [a, b, a, b]))
        assert codes.count(201) == 1 and set(codes) - {201} <= {404, 409}, codes
        ids.append(up["id"])
    listed = requests.get(f"{b.url}/files", headers=headers, params={"limit": 200}, timeout=10).json()["items"]
    assert sorted(f["id"] for f in listed) == sorted(ids)
    quota = requests.get(f"{a.url}/quota", headers=headers, timeout=10).json()
    assert quota["used_bytes"] == sum(f["size"] for f in listed) and quota["reserved_bytes"] == 0


def test_a_replica_killed_mid_chunk_loses_nothing_it_acknowledged(replicas, headers):
    survivor, doomed = replicas(2)
    data = os.urandom(CHUNK * 6)
    up = create(survivor.url, headers, len(data))
    acknowledged = []
    for i in (0, 2, 4):
        resp = put(doomed.url, headers, up["id"], i, data[i * CHUNK : (i + 1) * CHUNK])
        assert resp.status_code == 201
        acknowledged.append(i)
    # chunk 5 is half sent to the doomed replica when it dies
    with socket.create_connection(("127.0.0.1", doomed.port)) as sock:
        head = (
            f"PUT /uploads/{up['id']}/chunks/5 HTTP/1.1\r\nHost: x\r\nAuthorization: {headers['Authorization']}\r\n"
            f"Content-Type: application/octet-stream\r\nContent-Length: {CHUNK}\r\n\r\n"
        )
        sock.sendall(head.encode() + data[5 * CHUNK : 5 * CHUNK + CHUNK // 2])
        time.sleep(0.3)
        doomed.kill()
    status = requests.get(f"{survivor.url}/uploads/{up['id']}", headers=headers, timeout=10).json()
    assert status["missing"] == [1, 3, 5] and status["received_bytes"] == len(acknowledged) * CHUNK
    for i in (1, 3, 5):
        assert put(survivor.url, headers, up["id"], i, data[i * CHUNK : (i + 1) * CHUNK]).status_code == 201
    done = requests.post(f"{survivor.url}/uploads/{up['id']}/complete", headers=headers, timeout=30)
    assert done.status_code == 201
    assert requests.get(f"{survivor.url}/files/{up['id']}", headers=headers, timeout=30).content == data
