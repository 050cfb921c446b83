"""A file sent without a MIME type gets the one its name implies, whichever way it was uploaded."""

from __future__ import annotations

import base64
import io

from .tus_helpers import upload_id


def meta(client, headers, file_id: str) -> dict:
    resp = client.get(f"/files/{file_id}/meta", headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def test_a_multipart_file_sent_as_octet_stream_takes_its_names_type(client, alice):
    form = {"file": (io.BytesIO(b"hello"), "hello.txt", "application/octet-stream")}  # as curl -F sends an unknown part
    stored = client.post("/files", headers=alice, data=form, content_type="multipart/form-data").json
    assert stored["mime_type"] == "text/plain"
    assert meta(client, alice, stored["id"])["mime_type"] == "text/plain"


def test_json_and_sessions_and_the_seed_api_guess_from_the_name(api, client, alice):
    data = base64.b64encode(b"\x89PNG").decode()
    assert client.post("/files", headers=alice, json={"name": "photo.png", "data": data}).json["mime_type"] == "image/png"
    assert api.session(alice, b"# notes", name="notes.md")["mime_type"] == "text/markdown"
    assert api.upload(alice, b"%PDF-1.7", name="paper.pdf")["mime_type"] == "application/pdf"


def test_a_type_given_wins_and_an_unknown_name_keeps_the_default(api, client, alice):
    given = client.post("/files", headers=alice, json={"name": "data.txt", "data": "eA==", "mime_type": "application/json"}).json
    assert given["mime_type"] == "application/json"
    assert api.session(alice, b"x", name="blob.unknownext")["mime_type"] == "application/octet-stream"
    assert api.session(alice, b"x", name="README")["mime_type"] == "application/octet-stream"


def test_a_tus_upload_guesses_from_its_filename(tus, client, alice):
    url = tus.upload(alice, b'{"a": 1}', name="config.json")
    assert meta(client, alice, upload_id(url))["mime_type"] == "application/json"
