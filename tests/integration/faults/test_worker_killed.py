"""Issue 9, fault 1: a files worker killed with SIGKILL in the middle of chunk uploads.

A real gunicorn master (one worker, four threads) on the test's Redis.  While a
retrying client (``helpers.RetryingUploader``) sends the chunks of a session
four at a time, and one more chunk sits half-sent on its own connection, the
worker is SIGKILLed.  The half-sent chunk is never stored, the master starts a new worker,
and the client -- asking the upload's status after its failures and resending
what is missing -- completes a file that downloads byte-identical.
"""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor

from redfile_dev.testing import auth_header, make_settings, user_token
from redfile_files.settings import FilesSettings

from .helpers import RetryingUploader, answer_of, assert_file_checksums, half_sent_put, server_unread, stored_parts, upload_keys, wait_until

CHUNK = 64 * 1024
STALLED = 7  # the chunk whose request is half-sent when the workers die


def test_worker_killed_mid_upload_the_retrying_client_completes_byte_identical(redis_url, redis_client, gunicorn):
    (files,) = gunicorn("files", redis_url, MAX_CHUNK_BYTES=str(CHUNK))
    headers = auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice"))
    data = os.urandom(CHUNK * 48 + 777)
    client = RetryingUploader(files.url, headers, data, CHUNK, deadline=time.monotonic() + 90)
    upload_id = client.create()
    stalled = half_sent_put(files.port, headers, upload_id, STALLED, client.piece(STALLED))
    wait_until(lambda: len(files.worker_pids()) == 1, 10, "the worker")
    # the worker has read the half it was sent: it is in the middle of that chunk, waiting for the rest
    wait_until(lambda: server_unread(files.port, stalled.getsockname()[1]) == 0, 10, "the worker to read the first half")
    seen: dict = {}

    def kill_the_worker_mid_upload() -> None:
        wait_until(lambda: len(client.acked) >= client.total // 3, 60, "a third of the chunks", interval=0.002)
        seen["acked_at_kill"] = len(client.acked)
        seen["killed"] = files.worker_pids()
        for pid in seen["killed"]:
            os.kill(pid, signal.SIGKILL)
        seen["stalled_answer"] = answer_of(stalled)
        # nothing of the chunk it was receiving (the first round does not send that index)
        seen["stalled_keys"] = [k for k in upload_keys(redis_client, upload_id) if f"{{{upload_id}.{STALLED}}}" in k]
        seen["stalled_part"] = redis_client.hget(f"files:{{{upload_id}}}:parts", STALLED)
        # the master replaces the worker
        wait_until(lambda: len(set(files.worker_pids()) - set(seen["killed"])) == 1, 30, "the master to start a new worker")

    with ThreadPoolExecutor(1) as pool:
        killer = pool.submit(kill_the_worker_mid_upload)
        client.send_all(first_round=[i for i in range(client.total) if i != STALLED])  # the stalled chunk only via a retry
        killer.result(timeout=60)

    assert seen["acked_at_kill"] < client.total, "the worker was killed after the upload, not during it"
    assert seen["stalled_answer"] == b"", seen["stalled_answer"][:200]  # the request died with its worker
    assert seen["stalled_keys"] == [] and seen["stalled_part"] is None  # and stored nothing
    assert files.proc.poll() is None  # the master lived on
    assert client.rounds >= 2  # the stalled chunk came only from asking what is missing

    record = client.complete()
    assert_file_checksums(record, data, CHUNK, with_sha256=True)  # declared at creation, verified at completion
    assert client.download() == data, client.summary()
    assert set(stored_parts(redis_client, upload_id)) == set(range(client.total))
    # a worker killed between a chunk's SET and its script leaves the bytes on their way in: they expire by themselves
    leftovers = [k for k in upload_keys(redis_client, upload_id) if ":in:" in k]
    assert all(0 < redis_client.ttl(k) <= 60 for k in leftovers), leftovers
    assert not any(code == 500 for code, _, _ in client.server_errors), client.summary()
    answered = client.request("GET", "/quota")
    assert answered is not None, "the quota request got no answer"
    quota = answered.json()
    assert quota["used_bytes"] == len(data) and quota["reserved_bytes"] == 0
