"""tus 1.0.0 core: OPTIONS, HEAD, PATCH, the version header, offsets, content type, method override."""

import os

from .tus_helpers import OCTET, TUS, metadata, tus, upload_id  # noqa: F401 - tus is a fixture


def test_options_tells_version_extensions_max_size_and_algorithms_without_a_token(client, settings):
    resp = client.options("/tus/")
    assert resp.status_code == 204
    assert resp.headers["Tus-Version"] == "1.0.0" and resp.headers["Tus-Resumable"] == "1.0.0"
    assert resp.headers["Tus-Extension"].split(",") == [
        "creation", "creation-with-upload", "creation-defer-length", "expiration", "checksum", "checksum-trailer",
        "termination", "concatenation", "concatenation-unfinished",
    ]  # fmt: skip
    assert resp.headers["Tus-Max-Size"] == str(settings.max_file_bytes)
    assert {"sha1", "md5", "sha256", "crc32"} <= set(resp.headers["Tus-Checksum-Algorithm"].split(","))
    # the Tus-Resumable of an OPTIONS request is ignored, whatever it says
    assert client.options("/tus/", headers={"Tus-Resumable": "0.2.2"}).status_code == 204
    assert client.options("/tus/0123456789abcdef0123456789abcdef").status_code == 204


def test_head_reports_offset_and_length_and_is_never_cached(tus, alice):
    url = tus.new(alice, 100)
    assert tus.patch(alice, url, 0, b"x" * 30).status_code == 204
    resp = tus.head(alice, url)
    assert resp.status_code == 200 and resp.data == b""
    assert resp.headers["Upload-Offset"] == "30" and resp.headers["Upload-Length"] == "100"
    assert resp.headers["Cache-Control"] == "no-store"
    assert resp.headers["Tus-Resumable"] == "1.0.0"


def test_patch_applies_bytes_at_the_offset_and_answers_the_new_offset(tus, client, alice):
    data = os.urandom(200)
    url = tus.new(alice, len(data), meta=metadata(filename="core.bin"))
    first = tus.patch(alice, url, 0, data[:70])
    assert first.status_code == 204 and first.headers["Upload-Offset"] == "70" and first.data == b""
    assert tus.offset(alice, url) == 70
    last = tus.patch(alice, url, 70, data[70:])
    assert last.status_code == 204 and last.headers["Upload-Offset"] == "200"
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == data


def test_an_unsupported_or_missing_version_is_412_with_tus_version_and_nothing_happens(tus, client, alice, unchanged):
    url = tus.new(alice, 10)
    with unchanged():
        for headers in ({"Tus-Resumable": "0.2.2"}, {}):
            for resp in (
                client.post("/tus/", headers={**alice, **headers, "Upload-Length": "5"}),
                client.head(url, headers={**alice, **headers}),
                client.patch(url, headers={**alice, **headers, "Upload-Offset": "0"}, data=b"abc", content_type=OCTET),
                client.delete(url, headers={**alice, **headers}),
            ):
                assert resp.status_code == 412
                assert resp.headers["Tus-Version"] == "1.0.0" and resp.headers["Tus-Resumable"] == "1.0.0"
    assert tus.offset(alice, url) == 0


def test_an_offset_mismatch_is_409_and_changes_nothing(tus, alice, unchanged):
    url = tus.new(alice, 100)
    tus.patch(alice, url, 0, b"a" * 40)
    with unchanged():
        for offset in (0, 39, 41, 100):
            resp = tus.patch(alice, url, offset, b"b" * 10)
            assert resp.status_code == 409 and resp.get_json()["error"]["details"] == {"offset": 40}
    assert tus.offset(alice, url) == 40


def test_a_patch_that_is_not_offset_octet_stream_is_415(tus, alice, unchanged):
    url = tus.new(alice, 100)
    with unchanged():
        for content_type in ("application/octet-stream", "text/plain", "application/json"):
            resp = tus.patch(alice, url, 0, b"abc", content_type=content_type)
            assert resp.status_code == 415 and resp.get_json()["error"]["code"] == "unsupported_media_type"
        assert tus.patch(alice, url, 0, b"abc", headers={"Upload-Offset": "-1"}).status_code == 400
        assert tus.patch(alice, url, 0, b"abc", headers={"Upload-Offset": "ten"}).status_code == 400
    no_offset = tus.client.patch(url, headers={**alice, **TUS}, data=b"abc", content_type=OCTET)
    assert no_offset.status_code == 400


def test_x_http_method_override_replaces_the_method(tus, client, alice):
    url = tus.new(alice, 10)
    patched = client.post(
        url, headers={**alice, **TUS, "X-HTTP-Method-Override": "PATCH", "Upload-Offset": "0"}, data=b"hello", content_type=OCTET
    )
    assert patched.status_code == 204 and patched.headers["Upload-Offset"] == "5"
    head = client.post(url, headers={**alice, **TUS, "X-HTTP-Method-Override": "HEAD"})
    assert head.status_code == 200 and head.headers["Upload-Offset"] == "5" and head.headers["Cache-Control"] == "no-store"
    # a GET with an override is a PATCH too: the header wins over the method, whatever it is
    more = client.get(
        url, headers={**alice, **TUS, "X-HTTP-Method-Override": "patch", "Upload-Offset": "5"}, data=b"world", content_type=OCTET
    )
    assert more.status_code == 204 and more.headers["Upload-Offset"] == "10"
    url2 = tus.new(alice, 10)
    gone = client.post(url2, headers={**alice, **TUS, "X-HTTP-Method-Override": "DELETE"})
    assert gone.status_code == 204
    assert tus.head(alice, url2).status_code == 404
    options = client.post("/tus/", headers={"X-HTTP-Method-Override": "OPTIONS"})
    assert options.status_code == 204 and options.headers["Tus-Version"] == "1.0.0"


def test_every_response_carries_tus_resumable_errors_included(tus, client, alice):
    url = tus.new(alice, 10)
    responses = [
        tus.head(alice, url),
        tus.patch(alice, url, 3, b"x"),  # 409
        tus.head(alice, "/tus/" + "0" * 32),  # 404
        client.head(url, headers=TUS),  # 401
        client.put(url, headers={**alice, **TUS}),  # 405
        tus.delete(alice, url),
    ]
    assert [r.status_code for r in responses] == [200, 409, 404, 401, 405, 204]
    assert all(r.headers.get("Tus-Resumable") == "1.0.0" for r in responses)
    assert "PATCH" in responses[4].headers["Allow"]


def test_the_creation_url_works_with_and_without_its_slash_and_bad_ids_are_404(tus, client, alice):
    assert client.post("/tus", headers={**alice, **TUS, "Upload-Length": "3"}).status_code == 201
    assert client.post("/tus/", headers={**alice, **TUS, "Upload-Length": "3"}).status_code == 201
    for bad in ("nope", "0" * 31, "0" * 32, "A" * 32):
        assert tus.head(alice, f"/tus/{bad}").status_code == 404
        assert tus.patch(alice, f"/tus/{bad}", 0, b"x").status_code == 404
    assert client.patch("/tus/", headers={**alice, **TUS}).status_code == 405
