"""Every kind of bad input gets a 4xx JSON error and leaves Redis exactly as it was."""

import base64
import io

import pytest

UNKNOWN = "0123456789abcdef0123456789abcdef"
BAD_NAMES = [
    "../x",
    "a/b",
    "a\\b",
    "..",
    ".",
    "",
    "nul\x00byte",
    "bell\x07",
    "new\nline",
    " lead",
    "trail ",
    "x" * 256,
    "é" * 128,
    "rtl\u202eexe.txt",
    "\u200b",
    "\ufeff\u200b",
]
BAD_MIME = ["text", "text/", "text/plain\r\nSet-Cookie: x=1", "tëxt/plain", "a b/c", "x/" + "y" * 300]


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


@pytest.fixture
def state(api, alice):
    """A stored file and an upload in progress, so there is something to leave unchanged."""
    stored = api.upload(alice, b"stored bytes", name="kept.txt")
    upload = api.chunk(alice, 0, 3, b"first").json["file_id"]
    return {"file": stored["id"], "upload": upload}


def assert_error(resp, status, code=None):
    assert resp.status_code == status, resp.get_data(as_text=True)
    assert resp.is_json and set(resp.json) == {"error"}
    assert isinstance(resp.json["error"]["message"], str)
    if code:
        assert resp.json["error"]["code"] == code


@pytest.mark.parametrize("name", BAD_NAMES)
def test_bad_names_everywhere(client, api, alice, state, unchanged, name):
    with unchanged():
        assert_error(api.complete(alice, state["upload"], 5, name=name), 400, "invalid_name")
        assert_error(client.post(f"/files/{state['file']}/rename", headers=alice, json={"new_name": name}), 400, "invalid_name")
        assert_error(client.post("/files", headers=alice, json={"name": name, "data": "eA=="}), 400, "invalid_name")
        assert_error(client.post("/texts", headers=alice, json={"content": "x", "name": name}), 400, "invalid_name")


def test_bad_name_in_a_multipart_filename(client, alice, state, unchanged):
    with unchanged():
        assert_error(client.post("/files", headers=alice, data={"file": (io.BytesIO(b"x"), "../../etc/passwd")}), 400, "invalid_name")


@pytest.mark.parametrize("mime", BAD_MIME)
def test_bad_mime_types(client, api, alice, state, unchanged, mime):
    with unchanged():
        assert_error(api.complete(alice, state["upload"], 5, mime_type=mime), 400, "invalid_mime_type")
        assert_error(client.post("/files", headers=alice, json={"name": "x", "data": "eA==", "mime_type": mime}), 400, "invalid_mime_type")


@pytest.mark.parametrize(
    "body, status, code",
    [
        ({"chunk_index": 1, "total_chunks": 3, "chunk_data": "%%%"}, 400, "invalid_base64"),
        ({"chunk_index": 1, "total_chunks": 3, "chunk_data": "abcde"}, 400, "invalid_base64"),
        ({"chunk_index": 1, "total_chunks": 3, "chunk_data": 123}, 400, "invalid_base64"),
        ({"chunk_index": -1, "total_chunks": 3, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 3, "total_chunks": 3, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 10**30, "total_chunks": 3, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": "1", "total_chunks": "many", "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 0.5, "total_chunks": 3, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 1, "total_chunks": 0, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 1, "total_chunks": 1001, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 1, "chunk_data": "eA=="}, 422, "validation_error"),
        ({"chunk_index": 1, "total_chunks": 3}, 422, "validation_error"),
        ({"chunk_index": 1, "total_chunks": 4, "chunk_data": "eA=="}, 400, "invalid_chunk"),  # not the declared total
        ({"chunk_index": 1, "total_chunks": 3, "chunk_data": b64(b"x" * 65)}, 413, "payload_too_large"),
    ],
)
def test_bad_chunks(api, client, alice, state, unchanged, body, status, code):
    with unchanged():
        assert_error(client.post("/upload_chunk", headers=alice, json={"file_id": state["upload"], **body}), status, code)


@pytest.mark.parametrize("file_id", [UNKNOWN, "nope", "../" + UNKNOWN, UNKNOWN.upper()])
def test_unknown_uploads(client, api, alice, state, unchanged, file_id):
    with unchanged():
        assert_error(api.chunk(alice, 1, 3, b"x", file_id), 404, "upload_not_found")
        assert_error(api.complete(alice, file_id, 1), 404, "upload_not_found")


def test_a_completed_file_is_no_longer_an_upload(api, alice, state, unchanged):
    with unchanged():
        assert_error(api.chunk(alice, 0, 1, b"x", state["file"]), 404, "upload_not_found")
        assert_error(api.complete(alice, state["file"], 12), 404, "upload_not_found")


@pytest.mark.parametrize("file_id", [UNKNOWN, "nope", "..%2f..%2fetc", UNKNOWN.upper(), "0" * 33])
def test_unknown_files(client, alice, state, unchanged, file_id):
    with unchanged():
        for resp in (
            client.get(f"/files/{file_id}", headers=alice),
            client.get(f"/files/{file_id}/meta", headers=alice),
            client.post(f"/files/{file_id}/rename", headers=alice, json={"new_name": "x"}),
            client.delete(f"/files/{file_id}", headers=alice),
            client.get(f"/texts/{file_id}", headers=alice),
        ):
            assert_error(resp, 404)
            # a path-traversal id matches no route at all: the generic not_found
            assert resp.json["error"]["code"] == ("not_found" if "%2f" in file_id else "file_not_found")


def test_oversized_chunks_in_every_form(client, alice, state, unchanged, settings):
    big = b"x" * 65
    with unchanged():
        assert_error(
            client.post(
                "/upload_chunk",
                headers=alice,
                data={"file_id": state["upload"], "chunk_index": "1", "total_chunks": "3", "chunk_data": (io.BytesIO(big), "c")},
            ),
            413,
            "payload_too_large",
        )
        assert_error(
            client.post(
                f"/upload_chunk?file_id={state['upload']}&chunk_index=1&total_chunks=3",
                headers=alice,
                data=big,
                content_type="application/octet-stream",
            ),
            413,
            "payload_too_large",
        )
        # a body past MAX_CONTENT_LENGTH is refused before it is read
        huge = b"x" * (settings.max_request_bytes + 1)
        assert_error(
            client.post(
                f"/upload_chunk?file_id={state['upload']}&chunk_index=1&total_chunks=3",
                headers=alice,
                data=huge,
                content_type="application/octet-stream",
            ),
            413,
            "payload_too_large",
        )


def test_odd_bodies_and_queries(client, alice, state, unchanged):
    with unchanged():
        assert_error(client.post("/upload_chunk", headers=alice, data="{not json", content_type="application/json"), 400, "invalid_json")
        assert_error(client.post("/upload_chunk", headers=alice, data="text", content_type="text/plain"), 415, "unsupported_media_type")
        assert_error(
            client.post("/upload_chunk", headers=alice, data={"chunk_index": "1", "total_chunks": "3", "file_id": state["upload"]}),
            422,
            "validation_error",
        )
        assert_error(
            client.post("/upload_complete", headers=alice, json={"file_id": state["upload"], "name": "x"}), 422, "validation_error"
        )
        assert_error(
            client.post("/upload_complete", headers=alice, json={"file_id": state["upload"], "name": "x", "total_size": -1}),
            422,
            "validation_error",
        )
        assert_error(
            client.post("/upload_complete", headers=alice, json={"file_id": state["upload"], "name": "x", "total_size": "5"}),
            422,
            "validation_error",
        )
        assert_error(client.post("/upload_complete", headers=alice, data="[]", content_type="application/json"), 422)
        assert_error(client.post(f"/files/{state['file']}/rename", headers=alice, json={}), 422, "validation_error")
        assert_error(client.post(f"/files/{state['file']}/rename", headers=alice, json={"new_name": 7}), 422, "validation_error")
        for query in ({"limit": 0}, {"limit": 201}, {"limit": "x"}, {"cursor": "garbage!"}):
            assert_error(client.get("/files", headers=alice, query_string=query), 422, "validation_error")
        assert_error(client.put("/files", headers=alice), 405, "method_not_allowed")
