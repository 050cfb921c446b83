"""Who may do what: owners, other users, admins, services."""

import pytest

from redfile_dev.testing import auth_header, service_token, user_token


@pytest.fixture
def alices_file(api, alice):
    return api.upload(alice, b"alice's secret", name="secret.txt")


def test_another_users_file_is_404_for_every_verb(client, bob, alices_file, unchanged):
    fid = alices_file["id"]
    with unchanged():
        for resp in (
            client.get(f"/files/{fid}", headers=bob),
            client.get(f"/files/{fid}/meta", headers=bob),
            client.post(f"/files/{fid}/rename", headers=bob, json={"new_name": "mine.txt"}),
            client.delete(f"/files/{fid}", headers=bob),
            client.get(f"/texts/{fid}", headers=bob),
        ):
            assert resp.status_code == 404 and resp.json["error"]["code"] == "file_not_found"
        assert client.get("/files", headers=bob).json == {"items": [], "next_cursor": None}


def test_another_users_upload_is_404(api, alice, bob, unchanged):
    fid = api.chunk(alice, 0, 2, b"aa").json["file_id"]
    with unchanged():
        assert api.chunk(bob, 1, 2, b"bb", fid).json["error"]["code"] == "upload_not_found"
        assert api.complete(bob, fid, 2).status_code == 404
    assert api.chunk(alice, 1, 2, b"bb", fid).status_code == 200
    assert api.complete(alice, fid, 4).status_code == 201


def test_admin_can_act_on_any_file(client, admin, alice, alices_file):
    fid = alices_file["id"]
    assert client.get(f"/files/{fid}", headers=admin).data == b"alice's secret"
    assert client.get(f"/files/{fid}/meta", headers=admin).json["owner"] == "alice"
    renamed = client.post(f"/files/{fid}/rename", headers=admin, json={"new_name": "checked.txt"})
    assert renamed.status_code == 200 and renamed.json["owner"] == "alice"
    assert client.get(f"/files/{fid}/meta", headers=alice).json["name"] == "checked.txt"
    assert client.delete(f"/files/{fid}", headers=admin).status_code == 204
    assert client.get(f"/files/{fid}", headers=alice).status_code == 404


@pytest.mark.parametrize(
    "method, path",
    [
        ("get", "/files"),
        ("post", "/files"),
        ("post", "/upload_chunk"),
        ("post", "/upload_complete"),
        ("get", "/files/{id}"),
        ("get", "/files/{id}/meta"),
        ("post", "/files/{id}/rename"),
        ("delete", "/files/{id}"),
        ("post", "/texts"),
        ("get", "/texts/{id}"),
    ],
)
def test_user_routes_need_a_user_token(client, settings, alices_file, internal, unchanged, method, path):
    path = path.replace("{id}", alices_file["id"])
    with unchanged():
        for headers in ({}, {"Authorization": "Bearer nonsense"}, internal):
            resp = getattr(client, method)(path, headers=headers)
            assert resp.status_code == 401, (headers, resp.json)
            assert resp.json["error"]["code"] in ("unauthorized", "invalid_token")


def test_internal_endpoints_for_the_files_audience(api, client, internal, alice, bob, alices_file):
    other = api.upload(bob, b"bob's", name="b.txt")
    second = api.upload(alice, b"more", name="more.txt")

    by_owner = client.get("/internal/files", headers=internal, query_string={"owner": "alice"})
    assert by_owner.status_code == 200
    assert {f["id"] for f in by_owner.json["items"]} == {alices_file["id"], second["id"]}
    everything = client.get("/internal/files", headers=internal, query_string={"limit": 2})
    assert len(everything.json["items"]) == 2 and everything.json["next_cursor"]
    rest = client.get("/internal/files", headers=internal, query_string={"limit": 2, "cursor": everything.json["next_cursor"]})
    assert {f["id"] for f in everything.json["items"] + rest.json["items"]} == {alices_file["id"], second["id"], other["id"]}

    assert client.delete(f"/internal/files/{other['id']}", headers=internal).status_code == 204
    assert client.delete(f"/internal/files/{other['id']}", headers=internal).json["error"]["code"] == "file_not_found"
    assert client.delete("/internal/files/not-an-id", headers=internal).status_code == 404

    resp = client.delete("/internal/owners/alice/files", headers=internal)
    assert resp.status_code == 200 and resp.json == {"deleted": 2, "shares_removed": 0}
    assert client.get("/files", headers=alice).json["items"] == []
    assert client.delete("/internal/owners/alice/files", headers=internal).json == {"deleted": 0, "shares_removed": 0}


def test_internal_endpoints_refuse_user_tokens_and_other_audiences(client, settings, redis_client, alice, admin, alices_file, unchanged):
    wrong_audience = auth_header(service_token(settings, "admin", "auth"))
    with unchanged():
        for headers in ({}, alice, admin, wrong_audience):
            for method, path in (
                ("get", "/internal/files"),
                ("delete", f"/internal/files/{alices_file['id']}"),
                ("delete", "/internal/owners/alice/files"),
            ):
                resp = getattr(client, method)(path, headers=headers)
                assert resp.status_code == 401, (method, path, resp.json)


def test_a_revoked_user_is_refused(client, settings, redis_client, alices_file):
    headers = auth_header(user_token(settings, redis_client, "carol"))
    assert client.get("/files", headers=headers).status_code == 200
    redis_client.set("rf:tokstate:{carol}", "rotated")
    resp = client.get("/files", headers=headers)
    assert resp.status_code == 401 and resp.json["error"]["code"] == "token_revoked"
