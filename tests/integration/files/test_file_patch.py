"""PATCH /files/<id>: rename and move a file in one request (any subset of name and folder)."""

import pytest

from redfile_files.storage import keys


def test_patch_renames_moves_or_both(api, client, alice):
    made = api.session(alice, b"abc", name="a.txt")
    moved = client.patch(f"/files/{made['id']}", headers=alice, json={"folder": "/projects/2026"})
    assert moved.status_code == 200, moved.json
    assert (moved.json["name"], moved.json["folder"]) == ("a.txt", "/projects/2026")
    both = client.patch(f"/files/{made['id']}", headers=alice, json={"name": "b.txt", "folder": "/"})
    assert (both.json["name"], both.json["folder"]) == ("b.txt", "/")
    renamed = client.patch(f"/files/{made['id']}", headers=alice, json={"name": "c.txt"})
    assert (renamed.json["name"], renamed.json["folder"]) == ("c.txt", "/")
    assert renamed.json["created_at"] == made["created_at"]
    assert client.get(f"/files/{made['id']}/meta", headers=alice).json["name"] == "c.txt"


def test_patch_moves_the_files_index_entry(api, client, alice, redis_client):
    made = api.session(alice, b"abc", name="Report.pdf")
    client.patch(f"/files/{made['id']}", headers=alice, json={"folder": "/x"})
    assert redis_client.zrange(keys.user_names("alice"), 0, -1) == [f"/x/\0report.pdf\0{keys.index_id(made['id'])}".encode()]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({}, 422, "validation_error"),
        ({"name": "../x"}, 400, "invalid_name"),
        ({"folder": "/a//b"}, 400, "invalid_folder"),
        ({"folder": "a"}, 400, "invalid_folder"),
        ({"name": "ok.txt", "folder": "/a/../b"}, 400, "invalid_folder"),
        ({"folder": 5}, 422, "validation_error"),
        ({"owner": "bob"}, 422, "validation_error"),
    ],
)
def test_bad_patches_change_nothing(api, client, alice, unchanged, body, status, code):
    made = api.session(alice, b"abc", name="a.txt")
    with unchanged():
        resp = client.patch(f"/files/{made['id']}", headers=alice, json=body)
    assert (resp.status_code, resp.json["error"]["code"]) == (status, code)


def test_only_the_owner_or_an_admin_patches(api, client, alice, bob, admin):
    made = api.session(alice, b"abc", name="a.txt")
    assert client.patch(f"/files/{made['id']}", headers=bob, json={"name": "x"}).json["error"]["code"] == "file_not_found"
    assert client.patch(f"/files/{'0' * 32}", headers=alice, json={"name": "x"}).status_code == 404
    assert client.patch(f"/files/{made['id']}", headers=admin, json={"folder": "/by-admin"}).json["folder"] == "/by-admin"
