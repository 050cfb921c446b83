""" "Too large" says how large is allowed and how to send a large file instead."""

from __future__ import annotations

import io


def test_a_body_over_the_request_limit_names_the_limit_and_the_ways_to_send_a_large_file(client, alice, settings, unchanged):
    limit = settings.max_request_bytes
    with unchanged():
        form = {"file": (io.BytesIO(b"x" * (limit + 1)), "big.bin")}
        resp = client.post("/files", headers=alice, data=form, content_type="multipart/form-data")
    assert resp.status_code == 413, resp.json
    error = resp.json["error"]
    assert error["code"] == "payload_too_large" and error["details"] == {"max_request_bytes": limit}
    assert f"{limit:,} bytes" in error["message"]
    assert "/tus/" in error["message"] and "/uploads" in error["message"] and "README" in error["message"]


def test_a_file_over_the_one_request_limit_says_the_same(make_app, settings, redis_client, unchanged):
    from redfile_dev.testing import auth_header, user_token

    app = make_app(max_file_bytes=4096)  # the largest file allowed is bigger than a one-request upload
    client, alice = app.test_client(), auth_header(user_token(settings, redis_client, "alice"))
    limit = app.extensions["redfile"].settings.max_single_upload_bytes
    with unchanged():
        form = {"file": (io.BytesIO(b"x" * (limit + 1)), "big.bin")}
        resp = client.post("/files", headers=alice, data=form, content_type="multipart/form-data")
    assert resp.status_code == 413, resp.json
    error = resp.json["error"]
    assert error["details"] == {"max_single_upload_bytes": limit}
    assert f"{limit:,} bytes" in error["message"] and "/tus/" in error["message"] and "/uploads" in error["message"]
