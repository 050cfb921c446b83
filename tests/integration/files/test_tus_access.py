"""tus: only the owner touches an upload; racing PATCHes; any replica continues; CORS; bodies cut short."""

import hashlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .tus_helpers import OCTET, TUS, GatedBody, Tus, b64, cut_body, metadata


@pytest.fixture
def alices_upload(tus, alice):
    url = tus.new(alice, 100, meta=metadata(filename="mine.bin"))
    assert tus.patch(alice, url, 0, b"a" * 40).status_code == 204
    return url


def test_every_request_but_options_needs_a_token(client, alices_upload, unchanged):
    with unchanged():
        for method in ("HEAD", "PATCH", "GET", "DELETE"):
            resp = client.open(alices_upload, method=method, headers={**TUS, "Upload-Offset": "40"}, data=b"x", content_type=OCTET)
            assert resp.status_code == 401, method
        assert client.post("/tus/", headers={**TUS, "Upload-Length": "5"}).status_code == 401
        bad = client.head(alices_upload, headers={**TUS, "Authorization": "Bearer not-a-token"})
        assert bad.status_code == 401
        assert client.options(alices_upload).status_code == 204


@pytest.mark.parametrize("who", ["bob", "admin"])
def test_only_the_owner_can_touch_an_upload_or_its_file(tus, client, alice, bob, admin, alices_upload, unchanged, who):
    other = {"bob": bob, "admin": admin}[who]
    with unchanged():
        assert tus.head(other, alices_upload).status_code == 404
        assert tus.patch(other, alices_upload, 40, b"x").status_code == 404
        assert client.get(alices_upload, headers=other).status_code == 404
        assert tus.delete(other, alices_upload).status_code == 404
        assert tus.create(other, concat=f"final;{alices_upload}").status_code == 404
    assert tus.patch(alice, alices_upload, 40, b"b" * 60).status_code == 204  # now a file
    with unchanged():
        assert tus.head(other, alices_upload).status_code == 404
        assert client.get(alices_upload, headers=other).status_code == 404
        assert tus.delete(other, alices_upload).status_code == 404
    assert client.get(alices_upload, headers=alice).data == b"a" * 40 + b"b" * 60


def test_two_patches_racing_at_one_offset_one_proceeds_the_other_gets_409(tus, alice):
    url = tus.new(alice, 300)
    tus.patch(alice, url, 0, b"0" * 10)
    gate = threading.Barrier(2)
    bodies = {"A": os.urandom(100), "B": os.urandom(100)}

    def send(name):
        data = bodies[name]
        resp = tus.client.patch(
            url, headers={**alice, **TUS, "Upload-Offset": "10"}, content_type=OCTET, input_stream=GatedBody(data, gate)
        )
        return name, resp.status_code, resp.headers.get("Upload-Offset"), resp.get_json(silent=True)

    with ThreadPoolExecutor(2) as pool:
        results = sorted(pool.map(send, ["A", "B"]), key=lambda r: r[1])
    (winner, ok, new_offset, _), (_, lost, _, error) = results
    assert (ok, lost, new_offset) == (204, 409, "110")
    # Where to resume: the offset when the loser was refused. The winner advances it chunk by
    # chunk, so the loser may see a point part-way through the winner's body (never the old 10).
    assert 10 < error["error"]["details"]["offset"] <= 110
    assert tus.offset(alice, url) == 110
    rest = os.urandom(190)
    assert tus.patch(alice, url, 110, rest).status_code == 204
    assert tus.client.get(url, headers=alice).data == b"0" * 10 + bodies[winner] + rest


def test_racing_patches_with_checksums_leave_no_staged_chunks(tus, alice, redis_client):
    url = tus.new(alice, 100)
    gate = threading.Barrier(2)
    bodies = [os.urandom(100), os.urandom(100)]

    def send(data):
        headers = {**alice, **TUS, "Upload-Offset": "0", "Upload-Checksum": f"sha256 {b64(hashlib.sha256(data).digest())}"}
        return tus.client.patch(url, headers=headers, content_type=OCTET, input_stream=GatedBody(data, gate)).status_code

    with ThreadPoolExecutor(2) as pool:
        assert sorted(pool.map(send, bodies)) == [204, 409]
    assert [k for k in redis_client.keys("files:*") if b":s:" in k] == []
    assert tus.client.get(url, headers=alice).data in bodies


def test_any_replica_continues_any_upload(make_app, settings, redis_client):
    from redfile_dev.testing import auth_header, user_token

    one, two = Tus(make_app().test_client()), Tus(make_app().test_client())
    alice = auth_header(user_token(settings, redis_client, "alice"))
    data = os.urandom(500)
    url = one.new(alice, len(data), meta=metadata(filename="hop.bin"))
    offset = 0
    for i, end in enumerate((33, 64, 200, 201, 450, 500)):
        replica = (one, two)[i % 2]
        assert replica.offset(alice, url) == offset
        assert replica.patch(alice, url, offset, data[offset:end]).status_code == 204
        offset = end
    assert two.client.get(url, headers=alice).data == data
    assert one.head(alice, url).headers["Upload-Offset"] == "500"


def test_a_body_cut_short_keeps_what_arrived_and_the_upload_resumes(tus, alice, redis_client):
    data = os.urandom(200)
    url = tus.new(alice, len(data), meta=metadata(filename="cut.bin"))
    resp = tus.client.patch(url, headers={**alice, **TUS, "Upload-Offset": "0"}, content_type=OCTET, **cut_body(data[:150], 200))
    assert resp.status_code == 400
    assert tus.offset(alice, url) == 150  # stored as much as possible, a part of a chunk included
    assert tus.patch(alice, url, 150, data[150:]).status_code == 204
    assert tus.client.get(url, headers=alice).data == data


def test_a_body_cut_short_with_a_checksum_stores_nothing(tus, alice, redis_client, unchanged):
    data = os.urandom(200)
    url = tus.new(alice, len(data))
    headers = {**alice, **TUS, "Upload-Offset": "0", "Upload-Checksum": f"sha1 {b64(hashlib.sha1(data).digest())}"}
    with unchanged():
        resp = tus.client.patch(url, headers=headers, content_type=OCTET, **cut_body(data[:150], 200))
        assert resp.status_code == 400
    assert tus.offset(alice, url) == 0


# -- CORS ---------------------------------------------------------------------------
PREFLIGHT = {"Access-Control-Request-Method": "PATCH", "Access-Control-Request-Headers": "authorization,tus-resumable,upload-offset"}


def test_cors_allowed_origins_get_the_tus_headers_exposed_and_preflight_answers(make_app, settings, redis_client):
    from redfile_dev.testing import auth_header, user_token

    client = make_app(tus_cors_origins="https://app.example, https://other.example/").test_client()
    alice = auth_header(user_token(settings, redis_client, "alice"))
    origin = {"Origin": "https://app.example"}
    pre = client.options("/tus/", headers={**origin, **PREFLIGHT})
    assert pre.status_code == 204
    assert pre.headers["Access-Control-Allow-Origin"] == "https://app.example" and "Origin" in pre.headers["Vary"]
    assert {"PATCH", "HEAD", "DELETE", "POST"} <= {m.strip() for m in pre.headers["Access-Control-Allow-Methods"].split(",")}
    allowed = {h.strip().lower() for h in pre.headers["Access-Control-Allow-Headers"].split(",")}
    assert {
        "authorization",
        "tus-resumable",
        "upload-offset",
        "upload-length",
        "upload-metadata",
        "upload-checksum",
        "upload-concat",
        "upload-defer-length",
        "x-http-method-override",
        "content-type",
    } <= allowed
    created = client.post("/tus/", headers={**alice, **TUS, **origin, "Upload-Length": "3"})
    exposed = {h.strip() for h in created.headers["Access-Control-Expose-Headers"].split(",")}
    assert {"Location", "Upload-Offset", "Upload-Length", "Upload-Expires", "Tus-Resumable", "Upload-Metadata"} <= exposed
    assert created.headers["Access-Control-Allow-Origin"] == "https://app.example"
    # errors too, so a browser can read their status; and the second origin (written with a slash)
    refused = client.head(created.headers["Location"], headers={**TUS, "Origin": "https://other.example"})
    assert refused.status_code == 401 and refused.headers["Access-Control-Allow-Origin"] == "https://other.example"
    stranger = client.options("/tus/", headers={"Origin": "https://evil.example", **PREFLIGHT})
    assert "Access-Control-Allow-Origin" not in stranger.headers and "Access-Control-Allow-Methods" not in stranger.headers
    # the rest of the API is not opened to other origins
    assert "Access-Control-Allow-Origin" not in client.get("/files", headers={**alice, **origin}).headers


def test_cors_is_off_unless_configured_and_star_allows_any_origin(make_app, client):
    assert "Access-Control-Allow-Origin" not in client.options("/tus/", headers={"Origin": "https://app.example", **PREFLIGHT}).headers
    star = make_app(tus_cors_origins="*").test_client()
    resp = star.options("/tus/", headers={"Origin": "https://anywhere.example", **PREFLIGHT})
    assert resp.headers["Access-Control-Allow-Origin"] == "*"
