"""Issue 9, fault 2: Redis restarted (AOF on, same port, same data) in the middle of uploads.

A retrying client sends a session's chunks through a real gunicorn files
process.  Once a third are acknowledged, Redis goes down (killed under the
client's requests, or stopped while the client holds off: a SIGTERM'd Redis
serves on until its next cron tick, long enough for a fast client to finish
and never meet the outage); the client meets the outage (503s, retried), then
stops sending (``pause``: nothing in flight), Redis
comes back on the same port from its AOF, and *before* any client request can
resend anything the test reads Redis: every chunk acknowledged before the
outage is there, byte for byte.  Then the client resumes, unaided by the test,
and the file completes byte-identical.  The service is not restarted.

Which fsync policy: an acknowledged chunk is one Redis answered, so it
survives a crash of Redis only if the AOF was fsynced before that answer --
``appendfsync always``.  The product runs ``everysec`` (helm/redfile
files/redis/redis.conf, k8s/base; ``make run``'s private Redis keeps Redis's
default, also ``everysec``): a restart (SIGTERM, as Kubernetes and compose do)
fsyncs on shutdown and loses nothing, but a crash of the machine can lose
up to about a second (two, when the disk is slow) of acknowledged chunks.  So:

* ``always`` + SIGKILL: the guarantee itself, against the harshest process death;
* ``everysec`` + SIGTERM: what the product's configuration promises on a restart.

(SIGKILL under ``everysec`` usually loses nothing either -- each write reaches the
kernel before Redis answers -- but Redis may postpone that write while an fsync
is slow, so the test does not claim it.)
"""

from __future__ import annotations

import os
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import redis
import requests

from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

from .helpers import RetryingUploader, assert_file_checksums, chunk_key, part_record, staging_keys, stored_parts, wait_until

CHUNK = 64 * 1024


@pytest.mark.parametrize(
    "fsync, stop", [("always", "sigkill"), ("everysec", "sigterm")], ids=["appendfsync-always-sigkill", "appendfsync-everysec-sigterm"]
)
def test_redis_restarted_mid_upload_keeps_every_acknowledged_chunk(own_redis, gunicorn, fsync, stop):
    server = own_redis(appendonly=True, extra_args=["--appendfsync", fsync])
    r = redis.Redis.from_url(server.url)
    assert r.config_get("appendfsync") == {"appendfsync": fsync} and r.config_get("appendonly") == {"appendonly": "yes"}
    (files,) = gunicorn("files", server.url, MAX_CHUNK_BYTES=str(CHUNK))
    headers = auth_header(user_token(make_settings(FilesSettings, server.url), r, "alice"))
    data = os.urandom(CHUNK * 48 + 99)
    client = RetryingUploader(files.url, headers, data, CHUNK, deadline=time.monotonic() + 90)
    upload_id = client.create()
    seen: dict = {}

    def restart_redis_mid_upload() -> None:
        wait_until(lambda: len(client.acked) >= client.total // 3, 60, "a third of the chunks", interval=0.002)
        if stop == "sigkill":
            server.kill()  # at once: requests in flight are cut
        else:
            # Redis serves on until its next cron tick takes the SIGTERM (up to 100 ms): time enough for the
            # client to send every remaining chunk and never meet the outage.  So it waits the stop out.
            client.pause()
            server.stop()
            client.resume()
        seen["acked_at_stop"] = len(client.acked)
        wait_until(lambda: client.server_errors, 30, "the client to meet the outage")
        client.pause()  # nothing in flight, nothing new: no resend can hide a lost chunk
        # A chunk is acknowledged only after Redis ran its script, so none was acknowledged while Redis was down.
        seen["acked"] = dict(client.acked)
        server.start()  # the same port and data folder: it loads its AOF
        seen["parts"] = stored_parts(r, upload_id)
        seen["chunks"] = {i: r.get(chunk_key(r, upload_id, i) or "none") for i in seen["acked"]}
        client.resume()

    with ThreadPoolExecutor(1) as pool:
        restarter = pool.submit(restart_redis_mid_upload)
        client.send_all()
        restarter.result(timeout=60)

    assert seen["acked_at_stop"] < client.total, "Redis went down after the upload, not during it"
    for index in seen["acked"]:
        piece = client.piece(index)
        assert seen["parts"].get(index) == part_record(piece), f"acknowledged chunk {index} lost its part record"
        assert seen["chunks"][index] == piece, f"acknowledged chunk {index} lost its bytes"
    # while Redis was down every answer was a clean 503 with Retry-After, never a 500
    assert client.server_errors and {(s, c) for s, c, _ in client.server_errors} == {(503, "service_unavailable")}, client.summary()
    assert all(retry_after for _, _, retry_after in client.server_errors)

    record = client.complete()
    assert_file_checksums(record, data, CHUNK, with_sha256=True)  # declared at creation, verified at completion
    assert client.download() == data
    assert all(0 < r.ttl(k) <= 60 for k in staging_keys(r, upload_id))  # bytes cut off on their way in expire by themselves
    quota = requests.get(f"{files.url}/quota", headers=headers, timeout=10).json()
    assert quota["used_bytes"] == len(data) and quota["reserved_bytes"] == 0
    r.close()
