"""Every file and text has a folder: accepted by every kind of upload, default ``/``, kept in its metadata."""

import base64
import io

import pytest

from redfile_files.storage import keys

from .tus_helpers import metadata, upload_id

FOLDER = "/projects/2026/Résumés"


def meta_of(client, headers, file_id):
    resp = client.get(f"/files/{file_id}/meta", headers=headers)
    assert resp.status_code == 200, resp.json
    return resp.json


def test_a_file_without_a_folder_is_in_the_root(api, client, alice, redis_client):
    made = api.session(alice, b"root file")
    assert made["folder"] == "/"
    assert meta_of(client, alice, made["id"])["folder"] == "/"
    assert redis_client.hget(keys.meta(made["id"]), "folder") == b"/"


def test_a_file_stored_before_folders_reads_as_in_the_root(api, client, alice, redis_client):
    made = api.session(alice, b"old file")
    redis_client.hdel(keys.meta(made["id"]), "folder")
    assert meta_of(client, alice, made["id"])["folder"] == "/"


def test_an_upload_session_takes_its_folder_at_creation(api, client, alice):
    created = api.create(alice, 5, name="a.txt", folder=FOLDER)
    assert created.status_code == 201, created.json
    assert created.json["folder"] == FOLDER
    upload = created.json
    assert api.put(alice, upload["id"], 0, b"hello").status_code == 201
    assert client.get(f"/uploads/{upload['id']}", headers=alice).json["folder"] == FOLDER
    done = client.post(f"/uploads/{upload['id']}/complete", headers=alice)
    assert done.status_code == 201 and done.json["folder"] == FOLDER
    assert meta_of(client, alice, upload["id"])["folder"] == FOLDER


def test_a_seed_upload_takes_its_folder_at_completion(api, client, alice):
    first = api.chunk(alice, 0, 1, b"seed bytes")
    body = {"file_id": first.json["file_id"], "name": "seed.bin", "total_size": 10, "folder": "/seed"}
    done = client.post("/upload_complete", headers=alice, json=body)
    assert done.status_code == 201, done.json
    assert meta_of(client, alice, first.json["file_id"])["folder"] == "/seed"


def test_one_request_files_and_texts_take_a_folder(client, alice):
    form = {"file": (io.BytesIO(b"x"), "photo.png", "image/png"), "folder": "/photos"}
    assert client.post("/files", headers=alice, data=form).json["folder"] == "/photos"
    body = {"name": "data.bin", "data": base64.b64encode(b"\x00").decode(), "folder": "/data"}
    assert client.post("/files", headers=alice, json=body).json["folder"] == "/data"
    text = client.post("/texts", headers=alice, json={"content": "note", "folder": "/notes"})
    assert text.status_code == 201 and text.json["folder"] == "/notes"
    assert client.get(f"/texts/{text.json['id']}", headers=alice).json["folder"] == "/notes"


def test_a_tus_upload_takes_its_folder_from_its_metadata(tus, client, alice):
    data = b"tus bytes"
    url = tus.new(alice, len(data), meta=metadata(filename="t.bin", folder=FOLDER))
    tus.patch(alice, url, 0, data)
    assert meta_of(client, alice, upload_id(url))["folder"] == FOLDER


BAD = ["projects", "/a//b", "/a/", "/a/../b", "/a\u202eb", "/x" * 33]


@pytest.mark.parametrize("folder", BAD)
def test_a_bad_folder_is_400_invalid_folder_and_changes_nothing(api, client, tus, alice, unchanged, folder):
    first = api.chunk(alice, 0, 1, b"seed bytes").json["file_id"]
    with unchanged():
        answers = [
            api.create(alice, 5, name="a.txt", folder=folder),
            client.post("/files", headers=alice, json={"name": "d.bin", "data": "eA==", "folder": folder}),
            client.post("/texts", headers=alice, json={"content": "note", "folder": folder}),
            client.post("/upload_complete", headers=alice, json={"file_id": first, "name": "s.bin", "total_size": 10, "folder": folder}),
        ]
        form = {"file": (io.BytesIO(b"x"), "photo.png"), "folder": folder}
        answers.append(client.post("/files", headers=alice, data=form))
        answers.append(tus.create(alice, 3, meta=metadata(filename="t.bin", folder=folder)))
        for resp in answers:
            assert resp.status_code == 400, (resp.status_code, resp.get_data(as_text=True))
            if resp.is_json:
                assert resp.json["error"]["code"] == "invalid_folder", resp.json


def test_a_folder_that_is_not_a_string_is_a_validation_error(api, client, alice, unchanged):
    with unchanged():
        for resp in (
            api.create(alice, 5, name="a.txt", folder=7),
            client.post("/texts", headers=alice, json={"content": "note", "folder": ["/a"]}),
        ):
            assert resp.status_code == 422 and resp.json["error"]["code"] == "validation_error", resp.json
