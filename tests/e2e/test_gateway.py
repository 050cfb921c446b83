"""The development gateway behaves like the Ingress: bodies stream through whole, errors stay JSON."""

from __future__ import annotations

import os

import pytest
import requests

from .conftest import docs_load_through


def test_a_chunked_request_body_arrives_whole(make_user):
    _, _, api = make_user()
    data = os.urandom(200_000)

    def pieces():
        for i in range(0, len(data), 7_000):
            yield data[i : i + 7_000]

    resp = api.post(
        "/upload_chunk?chunk_index=0&total_chunks=1",
        data=pieces(),  # requests sends a generator with Transfer-Encoding: chunked
        headers={"Content-Type": "application/octet-stream"},
    )
    assert resp.status_code == 201, resp.text
    fid = resp.json()["file_id"]
    assert api.post("/upload_complete", json={"file_id": fid, "name": "c.bin", "total_size": len(data)}).status_code == 201
    assert api.get(f"/files/{fid}").content == data


def test_a_body_far_over_the_limit_gets_the_services_json_413(make_user):
    _, _, api = make_user()
    resp = api.post(
        "/upload_chunk?chunk_index=0&total_chunks=1", data=b"x" * (30 * 1024 * 1024), headers={"Content-Type": "application/octet-stream"}
    )
    assert resp.status_code == 413
    assert resp.json()["error"]["code"] == "payload_too_large"


def test_internal_routes_are_never_exposed(system):
    for path in ("/internal/files", "/internal/users", "/auth/../internal/users"):
        resp = requests.get(system.base + path, timeout=10)
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "not_found"


@pytest.mark.parametrize("service", ["auth", "files", "admin"])
def test_each_services_docs_load_whole_through_the_gateway(system, service):
    assert docs_load_through(system.base, service)


def test_a_service_that_is_down_is_a_json_502():
    from werkzeug.test import Client

    from redfile_dev.gateway import create_gateway
    from redfile_dev.redis_server import free_port

    dead = f"http://127.0.0.1:{free_port()}"
    client = Client(create_gateway(dead, dead, dead))
    resp = client.get("/files")
    assert resp.status_code == 502 and resp.json is not None
    assert resp.json["error"]["code"] == "bad_gateway"
