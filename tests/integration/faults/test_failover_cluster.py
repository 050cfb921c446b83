"""Issue 19, faults on real processes: a Redis Cluster primary killed (SIGKILL) in the middle of a 256 MiB upload
and in the middle of a download.

A real gunicorn files process runs against a private cluster (3 primaries, a replica each, cluster-node-timeout
of the harness) with ``REDIS_WAIT_REPLICAS=1``.  The primary killed is the one that owns the file's own slot
(its upload, part table and metadata: every chunk's record goes there), so every request on the file meets
the failover, and it holds a third of the chunks too.  Its replica is promoted; meanwhile requests answer 503
(or their connection breaks) within the request's budget, then everything works again without help.  The
uploading client re-sends what was not acknowledged; the service never lists an acknowledged chunk as missing
(zero acknowledged bytes lost), the file completes byte-identical, and every file completed before the kill
reads back byte-identical.  A download cut by the kill resumes with a Range from the bytes received.  Each
test prints its figures (``-s``).
"""

from __future__ import annotations

import os
import time

import pytest

from redfile_common.redis_topology import make_redis
from redfile_common.replicas import confirm_replicas
from redfile_common.settings import ServiceSettings
from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings
from redfile_files.storage import keys

from . import failover
from .failover import MIB
from .helpers import sha256

CHUNK = 4 * MIB
BIG = 256 * MIB
WORST_FAILURE = 2.0 + 0.5 + 1.0  # REQUEST_BUDGET, a 4 MiB chunk's body allowance, a little for the machine
RECOVERY = 20.0  # seconds from the kill to the first 2xx: the node timeout, the replica's election


def _files_service(redis_cluster, gunicorn):
    (files,) = gunicorn("files", redis_cluster.url, REDIS_WAIT_REPLICAS="1")
    client = make_redis(make_settings(ServiceSettings, redis_cluster.url, service_name="files", redis_wait_replicas=1))
    headers = auth_header(user_token(make_settings(FilesSettings, redis_cluster.url), client, "alice"))
    confirm_replicas(client, ["rf:tokstate:{alice}"])  # the token's version is on the replica too
    return files, headers, client


def _owner_of(redis_cluster, client, file_id: str):
    port = client.get_node_from_key(keys.upload(file_id)).port
    return next(node for node in redis_cluster.primaries() if node.port == port)


@pytest.mark.timing
def test_primary_killed_mid_upload_loses_no_acknowledged_byte(redis_cluster, gunicorn):
    files, headers, client = _files_service(redis_cluster, gunicorn)
    deadline = time.monotonic() + 240
    stored = failover.store_files(files.url, headers, [3 * MIB + 5, MIB, 17], deadline)
    data = os.urandom(BIG)
    exchanges = failover.Exchanges()
    uploader = failover.TimedUploader(files.url, headers, data, CHUNK, deadline=deadline, exchanges=exchanges)
    upload_id = uploader.create(name="big.bin")
    victim = _owner_of(redis_cluster, client, upload_id)
    kill = failover.upload_through_a_kill(uploader, lambda: redis_cluster.kill(victim), lambda: redis_cluster.wait_failover(victim, 30))
    record = uploader.complete()

    killed_at = kill.killed_at
    assert kill.promoted.port != victim.port  # type: ignore[attr-defined]  # the cluster's node
    assert uploader.forgotten == set(), f"acknowledged chunks lost: {sorted(uploader.forgotten)}"
    assert record["size"] == BIG and record["sha256"] == sha256(data)
    assert sha256(uploader.download()) == sha256(data)
    failover.read_back(exchanges, files.url, headers, stored, deadline)

    figures = exchanges.figures(killed_at, uploader.bytes_forgotten())
    print(
        f"\ncluster, the file slot's primary killed mid-upload ({len(kill.acked_at_kill)}/{uploader.total} chunks "
        f"acknowledged; its replica promoted after {kill.promoted_at - killed_at:.2f} s): {figures}"
    )
    failover.assert_within(figures, uploader, WORST_FAILURE, RECOVERY)


@pytest.mark.timing
def test_primary_killed_mid_download_resumes_with_a_range(redis_cluster, gunicorn):
    files, headers, client = _files_service(redis_cluster, gunicorn)
    deadline = time.monotonic() + 240
    stored = failover.store_files(files.url, headers, [2 * MIB + 1, 11], deadline)
    data = os.urandom(BIG)
    file_id = failover.upload_file(files.url, headers, data, CHUNK, "big.bin", deadline)
    victim = _owner_of(redis_cluster, client, file_id)
    exchanges = failover.Exchanges()
    download = failover.download_through_a_kill(
        exchanges, f"{files.url}/files/{file_id}", headers, BIG, lambda: redis_cluster.kill(victim), deadline
    )
    killed_at, cut_at = download.killed_at, download.cut_at
    assert sha256(download.body) == sha256(data)
    failover.read_back(exchanges, files.url, headers, stored, deadline)

    figures = exchanges.figures(killed_at)
    print(f"\ncluster, the file slot's primary killed mid-download (cut at {cut_at / MIB:.1f} MiB of {BIG // MIB}): {figures}")
    failover.assert_download_within(figures, WORST_FAILURE, RECOVERY)
