"""Issue 19: a Redis Cluster primary with no replica dies.  The files whose keys live on it answer a clear
503 (``service_unavailable``, with ``Retry-After``), never a 500 and never a hang; everything whose keys live
on the other primaries keeps working; once the node is back, so is every file.  A large file, whose chunks span
every primary, answers 503 ``storage_unavailable`` before its headers (never a 200 cut short), while a range on
the live primaries, a small file there and the listing are served.

A real gunicorn files process on a private 3-primary cluster without replicas
(``cluster-require-full-coverage no``: the live primaries serve their slots while one is down).
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import requests
from redis.cluster import RedisCluster

from redfile_common.redis_topology import make_redis
from redfile_common.settings import ServiceSettings
from redfile_common.tokens import TokenState
from redfile_dev.cluster import ClusterProcess
from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_dev.testing_topology import forget, register
from redfile_files.settings import FilesSettings
from redfile_files.storage import keys

from .helpers import RetryingUploader, error_code, sha256, wait_until


@pytest.mark.timing
def test_the_files_on_a_dead_primary_answer_503_and_the_others_are_served(tmp_path, gunicorn):
    # AOF on: the primary that dies comes back with what it had (no replica holds it meanwhile)
    cluster = ClusterProcess(tmp_path / "cluster", replicas=0, require_full_coverage=False, appendonly=True).start()
    register(cluster)
    try:
        (files,) = gunicorn("files", cluster.url, REQUEST_BUDGET="1")
        client = make_redis(make_settings(ServiceSettings, cluster.url, service_name="files"))
        assert isinstance(client, RedisCluster)
        # the primary to lose holds none of what every request of alice's reads (her token's state and denials,
        # her file index): those are her own slots' fate, not the files'
        mine = {client.get_node_from_key(k).port for k in (TokenState.version_key("alice"), keys.user_files("alice"))}
        victim = next(node for node in cluster.primaries() if node.port not in mine)
        for _ in range(200):
            token = user_token(make_settings(FilesSettings, cluster.url), client, "alice")
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            checked = [TokenState.DENY_PREFIX + claims["jti"], *([TokenState.family_deny_key(claims["fam"])] if claims.get("fam") else [])]
            if all(client.get_node_from_key(k).port != victim.port for k in checked):
                break
        headers = auth_header(token)
        stored = {}
        for n in range(12):  # small files: one chunk each, their keys on one, two or three primaries
            data = os.urandom(100 + n)
            resp = requests.post(f"{files.url}/files", headers=headers, files={"file": (f"f{n}.bin", data)}, timeout=10)
            assert resp.status_code == 201, resp.text
            stored[resp.json()["id"]] = data

        time.sleep(1.5)  # appendfsync everysec: what was written is on disk
        cluster.kill(victim)

        def on_victim(file_id: str) -> bool:
            names = [
                keys.meta(file_id),
                *(
                    k.decode()
                    for k in client.keys(
                        f"files:{{{file_id}.*}}:*", target_nodes=[n for n in client.get_primaries() if n.port != victim.port]
                    )
                ),
            ]
            return client.get_node_from_key(keys.meta(file_id)).port == victim.port or len(names) == 1

        served, refused = [], []
        for file_id, data in stored.items():
            started = time.monotonic()
            resp = requests.get(f"{files.url}/files/{file_id}", headers=headers, timeout=10)
            took = time.monotonic() - started
            assert took < 3.0, (file_id, took)  # within the budget, never a hang
            if resp.status_code == 200:
                assert resp.content == data
                served.append(file_id)
            else:
                assert resp.status_code == 503 and error_code(resp) == "service_unavailable", resp.text
                assert resp.headers["Retry-After"]
                refused.append(file_id)
        assert served and refused, (served, refused)  # some files live wholly on the live primaries, some not
        assert all(on_victim(f) for f in refused)
        assert requests.get(f"{files.url}/readyz", timeout=10).status_code == 200  # the pod stays in the Service

        cluster.start_node(victim)
        wait_until(lambda: all(cluster._ok(node) for node in cluster.live()), 30, "the cluster whole again")
        for file_id, data in stored.items():
            resp = requests.get(f"{files.url}/files/{file_id}", headers=headers, timeout=10)
            assert resp.status_code == 200 and sha256(resp.content) == sha256(data), (file_id, resp.status_code, resp.text[:300])
    finally:
        forget(cluster)
        cluster.stop()


MIB = 1024 * 1024
CHUNK = 256 * 1024


@pytest.mark.timing
def test_a_large_file_with_a_chunk_on_a_dead_primary_answers_503_before_its_headers(tmp_path, gunicorn):
    cluster = ClusterProcess(tmp_path / "cluster", replicas=0, require_full_coverage=False).start()
    register(cluster)
    try:
        (files,) = gunicorn("files", cluster.url, REQUEST_BUDGET="1")
        client = make_redis(make_settings(ServiceSettings, cluster.url, service_name="files"))
        assert isinstance(client, RedisCluster)
        port_of = lambda key: client.get_node_from_key(key).port  # noqa: E731
        mine = {port_of(k) for k in (TokenState.version_key("alice"), keys.user_files("alice"))}
        deadline = time.monotonic() + 60
        while True:  # a large file whose record and first chunk live on alice's primaries, its chunks on every one
            data = os.urandom(12 * CHUNK + 5)
            uploader = RetryingUploader(files.url, {}, data, CHUNK, deadline=deadline)
            token = user_token(make_settings(FilesSettings, cluster.url), client, "alice")
            uploader.headers = auth_header(token)
            claims = json.loads(base64.urlsafe_b64decode(token.split(".")[1] + "=="))
            big = uploader.create(name="big.bin")
            chunk_ports = [port_of(keys.chunk_key(big, i, "c")) for i in range(uploader.total)]
            if port_of(keys.meta(big)) in mine and chunk_ports[0] in mine and port_of(TokenState.DENY_PREFIX + claims["jti"]) in mine:
                break
        assert set(chunk_ports) == {node.port for node in cluster.primaries()}, "the chunks span every primary"
        headers = uploader.headers
        uploader.send_all()
        assert uploader.complete()["sha256"] == sha256(data)
        victim = next(node for node in cluster.primaries() if node.port not in mine)
        small = None
        while small is None:  # a small file wholly on the surviving primaries
            resp = requests.post(f"{files.url}/files", headers=headers, files={"file": ("small.bin", b"small")}, timeout=10)
            assert resp.status_code == 201, resp.text
            file_id = resp.json()["id"]
            if victim.port not in (port_of(keys.meta(file_id)), port_of(keys.chunk_key(file_id, 0, "c"))):
                small = file_id
            else:  # the listing's page holds only records on the live primaries (one on the dead one: its 503)
                assert requests.delete(f"{files.url}/files/{file_id}", headers=headers, timeout=10).status_code == 204

        cluster.kill(victim)
        started = time.monotonic()
        resp = requests.get(f"{files.url}/files/{big}", headers=headers, timeout=10)
        took = time.monotonic() - started
        print(f"\na large file, one of its primaries dead: {resp.status_code} {resp.text[:200]!r} in {took:.2f} s")
        assert took < 3.0, took  # within the budget, never a hang
        assert resp.status_code == 503 and error_code(resp) == "storage_unavailable", (resp.status_code, resp.headers, resp.text[:300])
        assert resp.headers["Retry-After"]
        on_victim = chunk_ports.index(victim.port)
        ranged = requests.get(f"{files.url}/files/{big}", headers={**headers, "Range": f"bytes={on_victim * CHUNK}-"}, timeout=10)
        assert ranged.status_code == 503 and error_code(ranged) == "storage_unavailable", ranged.text[:300]
        # chunk 0 lives on a surviving primary: a range within it is served
        part = requests.get(f"{files.url}/files/{big}", headers={**headers, "Range": f"bytes=5-{CHUNK - 1}"}, timeout=10)
        assert part.status_code == 206 and part.content == data[5:CHUNK], part.text[:300]
        resp = requests.get(f"{files.url}/files/{small}", headers=headers, timeout=10)
        assert resp.status_code == 200 and resp.content == b"small", resp.text[:300]
        listing = requests.get(f"{files.url}/files", headers=headers, timeout=10)
        assert listing.status_code == 200, listing.text[:300]
        assert {big, small} <= {item["id"] for item in listing.json()["items"]}
    finally:
        forget(cluster)
        cluster.stop()
