"""Issue 19, faults on real processes: the Sentinel primary killed (SIGKILL) in the middle of a 256 MiB upload
and in the middle of a download.

A real gunicorn files process runs against a private Sentinel set-up (a primary, two replicas, three
sentinels, down-after 1 s) with ``REDIS_WAIT_REPLICAS=1``: a request that stores something answers 2xx only
once a replica has it.  The sentinels promote a replica; meanwhile requests answer 503 (or their connection
breaks) within the request's budget, then everything works again without help -- the service is not
restarted.  The uploading client re-sends what was not acknowledged; the service never lists an acknowledged
chunk as missing (zero acknowledged bytes lost), the file completes byte-identical, and every file completed
before the kill reads back byte-identical.  A download cut by the kill resumes with a Range from the bytes
received.  Each test prints its figures (``-s``): time to recover, requests failed, worst failure, bytes lost.
"""

from __future__ import annotations

import os
import time

import pytest
import redis
import requests

from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

from . import failover
from .failover import MIB
from .helpers import OCTET, REQUEST_TIMEOUT, error_code, sha256

CHUNK = 4 * MIB
BIG = 256 * MIB
# A failed request answers within its budget: REQUEST_BUDGET (2 s) plus a chunk's body allowance
# (4 MiB at WRITE_BUDGET_RATE, 8 MiB/s: 0.5 s), and a little for the machine.
WORST_FAILURE = 2.0 + 0.5 + 1.0
RECOVERY = 20.0  # seconds from the kill to the first 2xx: down-after 1 s, the vote, the replica's resync
TUS = {"Tus-Resumable": "1.0.0"}


def _files_service(redis_sentinel, gunicorn, **env: str):
    """A files process in sentinel mode with REDIS_WAIT_REPLICAS=1, and a user's headers."""
    (files,) = gunicorn("files", redis_sentinel.url, REDIS_WAIT_REPLICAS="1", **env)
    primary = redis.Redis.from_url(redis_sentinel.url, single_connection_client=True)
    headers = auth_header(user_token(make_settings(FilesSettings, redis_sentinel.url), primary, "alice"))
    assert primary.execute_command("WAIT", 2, 5000) == 2  # the token's version is on both replicas
    primary.close()
    return files, headers


def test_a_streamed_chunk_is_acknowledged_only_once_a_replica_has_it(redis_sentinel, gunicorn):
    """A chunk's bytes and its script reach Redis past redis-py (``StagedChunk``): its 2xx waits for a replica too."""
    files, headers = _files_service(redis_sentinel, gunicorn, REQUEST_BUDGET="0.5")
    piece = os.urandom(MIB)
    up = requests.post(
        f"{files.url}/uploads", headers=headers, json={"name": "w.bin", "total_size": 2 * MIB, "chunk_size": MIB}, timeout=10
    )
    assert up.status_code == 201, up.text
    chunks = f"{files.url}/uploads/{up.json()['id']}/chunks"
    tus = requests.post(f"{files.url}/tus/", headers={**headers, **TUS, "Upload-Length": str(2 * MIB)}, timeout=10)
    assert tus.status_code == 201, tus.text

    def patch(offset: int) -> requests.Response:
        return requests.patch(
            f"{files.url}{tus.headers['Location']}",
            headers={**headers, **TUS, "Content-Type": "application/offset+octet-stream", "Upload-Offset": str(offset)},
            data=piece,
            timeout=10,
        )

    assert requests.put(f"{chunks}/0", headers={**headers, **OCTET}, data=piece, timeout=10).status_code == 201
    assert patch(0).status_code == 204
    for replica in redis_sentinel.replicas():
        replica.kill()  # the primary serves on; nothing it stores now is on a replica

    for resp in (requests.put(f"{chunks}/1", headers={**headers, **OCTET}, data=piece, timeout=10), patch(MIB)):
        assert resp.status_code == 503 and error_code(resp) == "service_unavailable", (resp.request.method, resp.status_code, resp.text)
        assert resp.headers["Retry-After"]


@pytest.mark.timing
def test_primary_killed_mid_upload_loses_no_acknowledged_byte(redis_sentinel, gunicorn):
    files, headers = _files_service(redis_sentinel, gunicorn)
    deadline = time.monotonic() + 240
    stored = failover.store_files(files.url, headers, [3 * MIB + 5, MIB, 17], deadline)
    data = os.urandom(BIG)
    exchanges = failover.Exchanges()
    client = failover.TimedUploader(files.url, headers, data, CHUNK, deadline=deadline, exchanges=exchanges)
    client.create(name="big.bin")
    kill = failover.upload_through_a_kill(client, redis_sentinel.kill_primary, lambda: redis_sentinel.wait_failover(30))
    record = client.complete()

    killed_at = kill.killed_at
    assert kill.promoted is not kill.killed
    just_before = [i for i, at in kill.acked_at_kill.items() if at > killed_at - 0.5]
    assert just_before, "no chunk was acknowledged in the half second before the kill"
    # every acknowledged chunk survived the failover: the service never asked for one of them again
    assert client.forgotten == set(), (
        f"acknowledged chunks lost: {[(i, round(client.acked[i] - killed_at, 3)) for i in sorted(client.forgotten)]}"
    )
    assert record["size"] == BIG and record["sha256"] == sha256(data)
    assert sha256(client.download()) == sha256(data)
    failover.read_back(exchanges, files.url, headers, stored, deadline)
    quota = requests.get(f"{files.url}/quota", headers=headers, timeout=REQUEST_TIMEOUT).json()
    assert quota["reserved_bytes"] == 0 and quota["used_bytes"] == BIG + 3 * MIB + 5 + MIB + 17

    figures = exchanges.figures(killed_at, client.bytes_forgotten())
    print(
        f"\nsentinel, primary killed mid-upload ({len(kill.acked_at_kill)}/{client.total} chunks acknowledged, "
        f"{len(just_before)} in the last 0.5 s; sentinels promoted a replica after "
        f"{kill.promoted_at - killed_at:.2f} s): {figures}"
    )
    assert client.server_errors, client.summary()  # the failover answered 503s, not only cut connections
    failover.assert_within(figures, client, WORST_FAILURE, RECOVERY)


@pytest.mark.timing
def test_primary_killed_mid_download_resumes_with_a_range(redis_sentinel, gunicorn):
    files, headers = _files_service(redis_sentinel, gunicorn)
    deadline = time.monotonic() + 240
    stored = failover.store_files(files.url, headers, [2 * MIB + 1, 11], deadline)
    data = os.urandom(BIG)
    file_id = failover.upload_file(files.url, headers, data, CHUNK, "big.bin", deadline)
    exchanges = failover.Exchanges()
    download = failover.download_through_a_kill(
        exchanges, f"{files.url}/files/{file_id}", headers, BIG, redis_sentinel.kill_primary, deadline
    )
    killed_at, cut_at = download.killed_at, download.cut_at
    assert cut_at < BIG, "the download in progress went on through the kill"
    assert sha256(download.body) == sha256(data)
    failover.read_back(exchanges, files.url, headers, stored, deadline)

    figures = exchanges.figures(killed_at)
    print(f"\nsentinel, primary killed mid-download (cut at {cut_at / MIB:.1f} MiB of {BIG // MIB}): {figures}")
    failover.assert_download_within(figures, WORST_FAILURE, RECOVERY)
