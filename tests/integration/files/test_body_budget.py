"""A request's budget grows with its body only up to the largest body its route takes (redfile_common.deadline).

A claimed Content-Length past that limit is refused (413) before any of it is granted; a body within it
gets ``length / WRITE_BUDGET_RATE`` seconds more, as a chunk of that size needs.
"""

from __future__ import annotations

import pytest

from redfile_common import deadline

from .tus_helpers import OCTET, TUS

MIB = 1024 * 1024
RATE = MIB  # a second of budget per MiB of body
BUDGET = 2.0


@pytest.fixture
def app(make_app):
    app = make_app(max_chunk_bytes=2 * MIB, max_file_bytes=8 * MIB, request_budget=BUDGET, write_budget_rate=RATE)
    app.config["SEEN_BUDGET"] = []

    @app.after_request
    def _seen(response):  # runs before the budget ends (teardown), also after a hook refused the request
        budget = deadline.current()
        app.config["SEEN_BUDGET"].append(None if budget is None else budget.left())
        return response

    return app


def claimed(length: int) -> dict:
    """A Content-Length the client claims (and a body it never sends)."""
    return {"CONTENT_LENGTH": str(length)}


def seen(app) -> float:
    (left,) = app.config["SEEN_BUDGET"]
    return left


def test_a_chunk_claimed_past_the_chunk_limit_is_413_and_gets_no_extra_budget(app, api, client, alice, unchanged):
    upload = api.create(alice, 4 * MIB, chunk_size=2 * MIB).json
    app.config["SEEN_BUDGET"].clear()
    with unchanged():
        resp = client.put(
            f"/uploads/{upload['id']}/chunks/0",
            headers=alice,
            data=b"x",
            content_type="application/octet-stream",
            environ_overrides=claimed(10 * 1024 * MIB),
        )
    assert resp.status_code == 413 and resp.json["error"]["code"] == "payload_too_large", resp.json
    assert resp.json["error"]["details"] == {"max_chunk_bytes": 2 * MIB}
    assert seen(app) <= BUDGET


def test_a_tus_patch_claimed_past_the_largest_file_is_413_and_gets_no_extra_budget(app, tus, alice, unchanged):
    url = tus.new(alice, 4 * MIB)
    app.config["SEEN_BUDGET"].clear()
    with unchanged():
        resp = tus.client.patch(
            url, headers={**alice, **TUS, "Upload-Offset": "0"}, data=b"x", content_type=OCTET, environ_overrides=claimed(10 * 1024 * MIB)
        )
    assert resp.status_code == 413, resp.get_data()
    assert seen(app) <= BUDGET


def test_a_json_body_claimed_past_the_request_limit_is_413_and_gets_no_extra_budget(app, client, alice, settings, unchanged):
    with unchanged():
        resp = client.post(
            "/files/zip", headers=alice, data=b"{}", content_type="application/json", environ_overrides=claimed(10 * 1024 * MIB)
        )
    assert resp.status_code == 413 and resp.json["error"]["details"] == {"max_request_bytes": settings.max_request_bytes}, resp.json
    assert seen(app) <= BUDGET


def test_a_whole_chunk_still_gets_its_proportional_budget(app, api, alice):
    upload = api.create(alice, 4 * MIB, chunk_size=2 * MIB).json
    app.config["SEEN_BUDGET"].clear()
    resp = api.put(alice, upload["id"], 0, b"y" * (2 * MIB))
    assert resp.status_code == 201, resp.json
    assert seen(app) > BUDGET + 1.5  # 2 s more for its 2 MiB, less what its Redis waits spent


def test_a_tus_patch_within_the_largest_file_still_gets_its_proportional_budget(app, tus, alice):
    url = tus.new(alice, 4 * MIB)
    app.config["SEEN_BUDGET"].clear()
    resp = tus.patch(alice, url, 0, b"z" * (3 * MIB))
    assert resp.status_code == 204, resp.get_data()
    assert seen(app) > BUDGET + 2.5
