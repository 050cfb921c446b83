"""tus 1.0.0 core: OPTIONS, HEAD, PATCH, the version header, offsets, content type, method override."""

import io
import os

import pytest

from .conftest import CHUNK, chunk_at
from .tus_helpers import OCTET, TUS, cut_body, metadata, upload_id


def test_options_tells_version_extensions_max_size_and_algorithms_without_a_token(client, settings):
    resp = client.options("/tus/")
    assert resp.status_code == 204
    assert resp.headers["Tus-Version"] == "1.0.0" and resp.headers["Tus-Resumable"] == "1.0.0"
    assert resp.headers["Tus-Extension"].split(",") == [
        "creation",
        "creation-with-upload",
        "creation-defer-length",
        "expiration",
        "checksum",
        "checksum-trailer",
        "termination",
        "concatenation",
        "concatenation-unfinished",
    ]
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


@pytest.mark.parametrize("chunks", [3, 1])
def test_a_chunk_refused_while_the_next_one_streams_ends_the_patch_409_with_nothing_of_it_stored(
    request, tus, alice, redis_client, monkeypatch, chunks
):
    """Another writer moves the offset just before this PATCH's first chunk is appended.  Sent ahead, that append's
    refusal is read only once the next chunk has streamed (its replies are not waited for), or at the body's end when
    it was the last: the PATCH still answers 409 with the offset the other writer left, and none of its chunks,
    staged bytes or connections stay behind."""
    from redfile_files.checksums import part_of
    from redfile_files.storage.tus import Segment, TusStore

    url = tus.new(alice, 3 * CHUNK)
    other = os.urandom(CHUNK)
    original_append, original_later = TusStore.append, TusStore.append_later
    raced: list[tuple] = []

    def race(store, upload_id, how):
        if not raced:
            raced.append((upload_id, how))
            original_append(
                store,
                upload_id,
                owner="alice",
                expected=0,
                new_offset=CHUNK,
                segments=[Segment(0, part_of(other), data=other)],
                now_iso="now",
            )

    def append(store, upload_id, **kw):
        race(store, upload_id, "waited for")
        return original_append(store, upload_id, **kw)

    def append_later(store, upload_id, **kw):
        race(store, upload_id, "sent ahead")
        return original_later(store, upload_id, **kw)

    monkeypatch.setattr(TusStore, "append", append)
    monkeypatch.setattr(TusStore, "append_later", append_later)
    resp = tus.patch(alice, url, 0, os.urandom(chunks * CHUNK))
    assert resp.status_code == 409 and resp.get_json()["error"]["details"] == {"offset": CHUNK}
    sent_ahead = "sent-ahead" in request.node.callspec.id  # the chunk streams, and its append's replies wait
    assert raced == [(upload_id(url), "sent ahead" if sent_ahead else "waited for")]
    assert tus.offset(alice, url) == CHUNK
    fid = upload_id(url)
    assert [redis_client.get(chunk_at(redis_client, fid, i)) for i in range(3)] == [other, None, None]


def test_a_redis_error_while_keeping_a_cut_body_s_bytes_still_reads_the_append_sent_before_it(request, tus, alice, monkeypatch):
    """The body is cut inside the second chunk; sending what arrived of that chunk fails on Redis (503) while the first
    chunk's append, sent ahead, is still unread: its replies are read all the same, so the offset says what is in
    place and no connection stays held (the fixture checks)."""
    import redis

    from redfile_files.storage.tus import TusStore

    if "sent-ahead" not in request.node.callspec.id:
        pytest.skip("only a chunk sent ahead has its append sent without waiting")
    url = tus.new(alice, 3 * CHUNK)
    original, sizes = TusStore.open_staged, []

    def open_staged(store, upload_id, index, token, n, size, **kw):
        sizes.append(size)
        if len(sizes) == 3:  # the first chunk, the second (cut), then the cut one's bytes sent again
            raise redis.exceptions.ConnectionError("Redis went away")
        return original(store, upload_id, index, token, n, size, **kw)

    monkeypatch.setattr(TusStore, "open_staged", open_staged)
    resp = tus.patch(alice, url, 0, b"", **cut_body(os.urandom(CHUNK + CHUNK // 2), 3 * CHUNK))
    assert resp.status_code == 503 and sizes == [CHUNK, CHUNK, CHUNK // 2]
    assert tus.offset(alice, url) == CHUNK


def test_a_chunked_body_past_the_upload_s_length_is_413_after_its_whole_chunks_are_in_place(tus, app, client, alice):
    """No Content-Length: the excess shows only as it arrives, while the last whole chunk's append may still be on its
    way (sent ahead, its replies are not waited for); the refusal reads it first, so what is stored is said right."""

    class Trickle(io.BytesIO):  # the body arrives a chunk at a time, as over a slow network
        def read(self, size=-1):
            return super().read(CHUNK if size < 0 else min(size, CHUNK))

    url = tus.new(alice, 2 * CHUNK)
    uploaded = app.extensions["redfile_metrics"].registry.get_sample_value
    before = uploaded("redfile_files_uploaded_bytes_total", {"service": "files"}) or 0
    resp = client.patch(
        url,
        headers={**alice, **TUS, "Upload-Offset": "0", "Transfer-Encoding": "chunked"},
        content_type=OCTET,
        input_stream=Trickle(os.urandom(3 * CHUNK)),
        environ_overrides={"wsgi.input_terminated": True, "CONTENT_LENGTH": ""},
    )
    assert resp.status_code == 413 and resp.get_json()["error"]["code"] == "payload_too_large"
    assert tus.offset(alice, url) == 2 * CHUNK  # tus keeps what arrived: the two whole chunks
    assert uploaded("redfile_files_uploaded_bytes_total", {"service": "files"}) - before == 2 * CHUNK  # each append read, counted
    resp = tus.patch(alice, url, 2 * CHUNK, b"")
    assert resp.status_code == 204 and resp.headers["Upload-Offset"] == str(2 * CHUNK)


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
