"""Sharing over HTTP through the gateway, against the real gunicorn processes (several workers)."""

from __future__ import annotations

import io
import os
import threading
import zipfile
from concurrent.futures import ThreadPoolExecutor

import requests

from .conftest import login


def _upload(api, data: bytes, name: str) -> dict:
    resp = api.post("/files", files={"file": (name, data)})
    assert resp.status_code == 201, resp.text
    return resp.json()


def test_a_link_works_without_an_account_and_its_limit_holds_across_workers(system, make_user):
    _, _, alice = make_user()
    data = os.urandom(50_000)
    f = _upload(alice, data, "photo.bin")
    link = alice.post(f"/files/{f['id']}/shares", json={"max_downloads": 2, "password": "pw-e2e"}).json()
    url = f"{system.base}/s/{link['token']}"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"X-Share-Password": "wrong"}, timeout=10).status_code == 401
    part = requests.get(url, headers={"X-Share-Password": "pw-e2e", "Range": "bytes=100-199"}, timeout=10)
    assert part.status_code == 206 and part.content == data[100:200] and part.headers["ETag"] == f'"{f["sha256"]}"'

    start = threading.Barrier(10, timeout=10)

    def race(_):
        start.wait()
        return requests.get(url, headers={"X-Share-Password": "pw-e2e"}, timeout=20)

    with ThreadPoolExecutor(10) as pool:
        results = list(pool.map(race, range(10), timeout=60))
    winners = [r for r in results if r.status_code == 200]
    assert len(winners) == 1 and winners[0].content == data  # one download was left
    assert sorted(r.status_code for r in results) == [200] + [410] * 9
    listed = alice.get("/shares").json()["items"]
    assert [(x["id"], x["downloads"], x["state"]) for x in listed] == [(link["id"], 2, "used_up")]
    assert requests.get(f"{url}/qr.svg", timeout=10).status_code == 410
    assert alice.delete(f"/shares/{link['id']}").status_code == 204
    assert requests.get(url, headers={"X-Share-Password": "pw-e2e"}, timeout=10).status_code == 404


def test_named_users_send_to_zip_and_delete(system, make_user):
    _, _, alice = make_user()
    bob_name, _, bob = make_user()
    _, _, carol = make_user()
    f = _upload(alice, b"for bob's eyes", "note.txt")
    assert alice.post(f"/files/{f['id']}/recipients", json={"username": bob_name}).status_code == 201
    sent = alice.post(f"/send/{bob_name}", files={"file": ("gift.bin", b"gift")}).json()
    assert {x["id"] for x in bob.get("/shared-with-me").json()["items"]} == {f["id"], sent["id"]}
    assert bob.get(f"/shared-with-me/{f['id']}").content == b"for bob's eyes"
    assert carol.get(f"/shared-with-me/{f['id']}").status_code == 404
    z = bob.post("/files/zip", json={"file_ids": [f["id"], sent["id"]]})
    assert z.status_code == 200
    assert sorted(zipfile.ZipFile(io.BytesIO(z.content)).namelist()) == ["gift.bin", "note.txt"]
    link = alice.post(f"/files/{f['id']}/shares", json={}).json()
    assert alice.delete(f"/files/{f['id']}").status_code == 204
    assert requests.get(f"{system.base}/s/{link['token']}", timeout=10).status_code == 404
    assert [x["id"] for x in bob.get("/shared-with-me").json()["items"]] == [sent["id"]]
    assert alice.get("/shares").json()["items"] == []


def test_text_burn_after_read(system, make_user):
    _, _, alice = make_user()
    text = alice.post("/texts", json={"content": "self-destructs"}).json()
    link = alice.post(f"/files/{text['id']}/shares", json={"burn_after_read": True}).json()
    assert requests.get(link["url"], timeout=10).text == "self-destructs"
    assert requests.get(f"{system.base}/s/{link['token']}", timeout=10).status_code in (404, 410)
    assert alice.get(f"/texts/{text['id']}").status_code == 404


def _account(system, admin, name: str, password: str):
    resp = admin.post("/admin/users", json={"username": name, "password": password, "role": "user"})
    assert resp.status_code == 201, resp.text
    return login(system.base, name, password)


def test_a_share_goes_to_an_account_not_to_a_name(system, admin, make_user, unique):
    """Issue 18, finding 1: a name nobody has is refused, and whoever takes it later gets nothing."""
    _, _, alice = make_user()
    ghost = f"g{unique}"
    f = _upload(alice, b"for whoever", "who.txt")
    for resp in (
        alice.post(f"/files/{f['id']}/recipients", json={"username": ghost}),
        alice.post(f"/send/{ghost}", files={"file": ("g.bin", b"g")}),
    ):
        assert resp.status_code == 404 and resp.json()["error"]["code"] == "user_not_found", resp.text
    assert alice.get(f"/files/{f['id']}/recipients").json() == {"recipients": []}
    assert [x["name"] for x in alice.get("/files").json()["items"]] == ["who.txt"]  # the refused send stored nothing
    late = _account(system, admin, ghost, f"pw-{unique}-ghost")
    assert late.get("/shared-with-me").json()["items"] == []
    assert late.get(f"/shared-with-me/{f['id']}").status_code == 404


def test_a_deleted_user_leaves_nothing_to_a_new_account_of_the_name(system, admin, make_user, unique):
    """Issue 18, finding 1: deleting a user takes them off every share; the name's next account inherits nothing."""
    _, _, alice = make_user()
    bob_name, _, bob = make_user()
    f = _upload(alice, b"for the first bob", "a.txt")
    assert alice.post(f"/files/{f['id']}/recipients", json={"username": bob_name}).status_code == 201
    sent = alice.post(f"/send/{bob_name}", files={"file": ("gift.bin", b"gift")}).json()
    own = _upload(bob, b"bob's own", "own.txt")
    assert admin.request("PUT", f"/admin/users/{bob_name}/quota", json={"quota_bytes": 12345}).status_code == 200
    assert admin.delete(f"/admin/users/{bob_name}").status_code == 204
    assert alice.get(f"/files/{f['id']}/recipients").json() == {"recipients": []}
    assert alice.get(f"/files/{sent['id']}/recipients").json() == {"recipients": []}
    new_bob = _account(system, admin, bob_name, f"pw-{unique}-again")
    assert new_bob.get("/shared-with-me").json()["items"] == []
    for fid in (f["id"], sent["id"]):
        assert new_bob.get(f"/shared-with-me/{fid}").status_code == 404
    assert new_bob.get("/files").json()["items"] == [] and new_bob.get(f"/files/{own['id']}").status_code == 404
    assert admin.get(f"/admin/users/{bob_name}/quota").json()["quota_bytes"] != 12345


def test_links_through_the_gateway_point_at_the_gateway(system, make_user):
    """Issue 18, findings 2 and 5: the link and its QR code name the gateway, and a resume is not another download."""
    _, _, alice = make_user()
    data = os.urandom(20_000)
    f = _upload(alice, data, "big.bin")
    link = alice.post(f"/files/{f['id']}/shares", json={"max_downloads": 1}).json()
    assert link["url"] == f"{system.base}/s/{link['token']}"
    assert link["qr_svg"] == f"{link['url']}/qr.svg" and requests.get(link["qr_svg"], timeout=10).status_code == 200
    assert requests.get(link["url"], timeout=10).content == data
    rest = requests.get(link["url"], headers={"Range": "bytes=12000-"}, timeout=10)  # the download broke at 12000
    assert rest.status_code == 206 and rest.content == data[12000:]
    assert [x["downloads"] for x in alice.get("/shares").json()["items"]] == [1]
    assert requests.get(link["url"], timeout=10).status_code == 410  # another whole download: none left
