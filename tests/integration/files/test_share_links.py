"""Share links: token URLs without an account, passwords, expiry, download limits, preview, revocation."""

from __future__ import annotations

import hashlib
import time

import blake3
import google_crc32c

from redfile_common.app import domain_of
from redfile_files.domain import FilesDomain

from .conftest import CHUNK
from .share_helpers import PW, link_path, make_link


def blake3_composite(data: bytes, chunk: int = CHUNK) -> str:
    """The file's composite, from the bytes uploaded: BLAKE3 over its chunks' BLAKE3 digests, ``-<chunks>``."""
    pieces = [data[i : i + chunk] for i in range(0, len(data), chunk)]
    return blake3.blake3(b"".join(blake3.blake3(p).digest() for p in pieces)).hexdigest() + f"-{len(pieces)}"


def test_a_link_downloads_without_an_account_and_counts(api, client, alice):
    data = bytes(range(256)) * 3
    f = api.upload(alice, data, name="report.bin")
    link = make_link(client, alice, f["id"])
    assert len(link["token"]) == 43 and link["url"].endswith(link_path(link)) and link["state"] == "active"
    resp = client.get(link_path(link))
    assert resp.status_code == 200 and resp.data == data
    # a chunked upload has no SHA-256: the ETag is its composite, as computed from the bytes uploaded
    assert f["sha256"] is None and f["composite_blake3"] == blake3_composite(data)
    assert resp.headers["ETag"] == f'"{blake3_composite(data)}"' and resp.headers["X-Content-Type-Options"] == "nosniff"
    assert resp.headers["X-Checksum-CRC32C"] == f"{google_crc32c.value(data):08x}"
    assert resp.headers["Referrer-Policy"] == "no-referrer"
    meta = client.get(f"{link_path(link)}/meta")
    assert meta.status_code == 200 and meta.json["name"] == "report.bin" and meta.json["size"] == len(data)
    assert "owner" not in meta.json and "id" not in meta.json
    listed = client.get("/shares", headers=alice).json["items"]
    assert [(x["id"], x["downloads"]) for x in listed] == [(link["id"], 1)]
    assert "token" not in listed[0]


def test_range_etag_and_head_on_the_shared_path(api, client, alice):
    data = b"0123456789" * 30
    f = api.upload(alice, data)
    link = make_link(client, alice, f["id"], max_downloads=2)
    part = client.get(link_path(link), headers={"Range": "bytes=10-19"})
    assert part.status_code == 206 and part.data == data[10:20] and part.headers["Content-Range"] == f"bytes 10-19/{len(data)}"
    assert client.get(link_path(link), headers={"Range": "bytes=9999-"}).status_code == 416
    head = client.head(link_path(link))
    assert head.status_code == 200 and head.headers["Content-Length"] == str(len(data)) and head.data == b""
    assert client.get(link_path(link), headers={"If-None-Match": f'"{blake3_composite(data)}"'}).status_code == 304
    # the 206 counted, HEAD, 304 and the 416 did not
    assert client.get("/shares", headers=alice).json["items"][0]["downloads"] == 1


def test_the_token_is_stored_only_hashed(api, client, alice, redis_client):
    f = api.upload(alice, b"secret")
    link = make_link(client, alice, f["id"], password="pw-123456")
    token = link["token"].encode()
    for key in redis_client.keys("*"):
        assert token not in key
        kind = redis_client.type(key).decode()
        values = [redis_client.get(key)] if kind == "string" else list(redis_client.hgetall(key).values()) if kind == "hash" else []
        assert all(token not in (v or b"") and b"pw-123456" not in (v or b"") for v in values)
    assert redis_client.exists(f"files:{{l:{hashlib.sha256(token).hexdigest()}}}:link")


def test_password_wrong_is_401_and_limited_across_replicas(api, client, alice, make_app):
    f = api.upload(alice, b"guarded")
    link = make_link(client, alice, f["id"], password="open sesame")
    assert link["password"] is True
    assert client.get(link_path(link)).json["error"]["code"] == "share_password_required"
    other = make_app(share_password_max_failures=3).test_client()  # another replica, same Redis
    mine = make_app(share_password_max_failures=3).test_client()
    for c in (mine, other, mine):
        resp = c.get(link_path(link), headers={PW: "wrong"})
        assert resp.status_code == 401 and resp.json["error"]["code"] == "share_password_required"
    for c in (other, mine):
        resp = c.get(link_path(link), headers={PW: "open sesame"})
        assert resp.status_code == 429 and "Retry-After" in resp.headers
    assert client.get("/shares", headers=alice).json["items"][0]["downloads"] == 0
    # another link is not affected
    second = make_link(client, alice, f["id"], password="p2")
    assert mine.get(link_path(second), headers={PW: "p2"}).data == b"guarded"


def test_the_right_password_downloads(api, client, alice):
    f = api.upload(alice, b"guarded")
    link = make_link(client, alice, f["id"], password="open sesame")
    assert client.get(link_path(link), headers={PW: "open sesame"}).data == b"guarded"
    assert client.get(f"{link_path(link)}/meta", headers={PW: "open sesame"}).json["name"] == "file.bin"
    assert client.get(f"{link_path(link)}/meta").status_code == 401


def test_expired_is_410_and_revoked_is_404(api, client, alice):
    f = api.upload(alice, b"short-lived")
    link = make_link(client, alice, f["id"], expires_in=2)
    assert client.get(link_path(link)).status_code == 200
    deadline = time.monotonic() + 8
    while client.get(f"{link_path(link)}/meta").status_code != 410:
        assert time.monotonic() < deadline
        time.sleep(0.2)
    resp = client.get(link_path(link))
    assert resp.status_code == 410 and resp.json["error"]["details"]["reason"] == "expired"
    assert client.get("/shares", headers=alice).json["items"][0]["state"] == "expired"
    assert client.delete(f"/shares/{link['id']}", headers=alice).status_code == 204
    assert client.get(link_path(link)).status_code == 404
    assert client.get("/shares", headers=alice).json["items"] == []
    assert client.delete(f"/shares/{link['id']}", headers=alice).status_code == 404


def test_used_up_is_410(api, client, alice):
    f = api.upload(alice, b"once")
    link = make_link(client, alice, f["id"], max_downloads=1)
    assert client.get(link_path(link)).data == b"once"
    resp = client.get(link_path(link))
    assert resp.status_code == 410 and resp.json["error"]["code"] == "share_gone" and resp.json["error"]["details"]["reason"] == "used_up"
    assert client.get("/shares", headers=alice).json["items"][0]["state"] == "used_up"


def test_preview_or_attachment(api, client, alice):
    f = api.upload(alice, b"hello", name="a.txt", mime_type="text/plain")
    shown = make_link(client, alice, f["id"])
    hidden = make_link(client, alice, f["id"], preview=False)
    assert client.get(link_path(shown)).headers["Content-Disposition"].startswith("inline")
    assert client.get(link_path(hidden)).headers["Content-Disposition"].startswith("attachment")
    assert client.get(link_path(hidden)).headers["Content-Security-Policy"] == "sandbox"


def test_bad_options_and_unknown_tokens(api, client, alice):
    f = api.upload(alice, b"x")
    assert client.post(f"/files/{f['id']}/shares", headers=alice, json={"max_downloads": 0}).status_code == 422
    assert client.post(f"/files/{f['id']}/shares", headers=alice, json={"expires_at": "2000-01-01T00:00:00Z"}).status_code == 422
    assert client.post(f"/files/{f['id']}/shares", headers=alice, json={"burn_after_read": True}).status_code == 422
    assert client.post(f"/files/{f['id']}/shares", json={}).status_code == 401
    for token in ("nope", "A" * 43, "../etc"):
        assert client.get(f"/s/{token}").status_code == 404


def test_qr_codes(api, client, alice):
    f = api.upload(alice, b"x")
    link = make_link(client, alice, f["id"])
    png = client.get(f"{link_path(link)}/qr.png")
    assert png.status_code == 200 and png.mimetype == "image/png" and png.data.startswith(b"\x89PNG")
    svg = client.get(f"{link_path(link)}/qr.svg")
    assert svg.status_code == 200 and svg.mimetype == "image/svg+xml" and b"<svg" in svg.data
    assert link["qr_png"].endswith("/qr.png") and link["qr_svg"].endswith("/qr.svg")
    client.delete(f"/shares/{link['id']}", headers=alice)
    assert client.get(f"{link_path(link)}/qr.png").status_code == 404


def test_burn_after_read_text(client, alice):
    text = client.post("/texts", headers=alice, json={"content": "the eagle lands at noon"}).json
    link = make_link(client, alice, text["id"], burn_after_read=True)
    assert link["max_downloads"] == 1 and link["burn_after_read"]
    assert client.get(link_path(link)).data == b"the eagle lands at noon"
    assert client.get(link_path(link)).status_code in (404, 410)
    assert client.get(f"/texts/{text['id']}", headers=alice).status_code == 404


def test_a_burn_after_read_racing_the_texts_deletion_is_404_not_500(app, client, alice, monkeypatch):
    text = client.post("/texts", headers=alice, json={"content": "gone in a moment"}).json
    link = make_link(client, alice, text["id"], burn_after_read=True)
    reader = domain_of(FilesDomain, app).reader
    real = reader.read_chunks

    def deleted_meanwhile(record, *args):
        assert client.delete(f"/files/{text['id']}", headers=alice).status_code == 204  # the owner deletes it now
        return real(record, *args)

    monkeypatch.setattr(reader, "read_chunks", deleted_meanwhile)
    resp = client.get(link_path(link))
    assert resp.status_code == 404 and resp.json["error"]["code"] == "share_not_found", resp.json


def test_text_snippets_share_like_files(client, alice):
    text = client.post("/texts", headers=alice, json={"content": "buy milk", "name": "todo.txt"}).json
    link = make_link(client, alice, text["id"])
    resp = client.get(link_path(link))
    assert resp.data == b"buy milk" and resp.mimetype == "text/plain"


def test_every_share_action_is_audited_and_logged(api, client, alice, redis_client, capsys):
    f = api.upload(alice, b"x")
    link = make_link(client, alice, f["id"])
    client.get(link_path(link))
    client.delete(f"/shares/{link['id']}", headers=alice)
    entries = [{k.decode(): v.decode() for k, v in e.items()} for _, e in redis_client.xrange("rf:audit")]
    mine = [e for e in entries if e.get("target") == link["id"]]
    assert [e["action"] for e in mine] == ["share.created", "share.used", "share.revoked"]
    assert [e["actor"] for e in mine] == ["alice", "anonymous", "alice"]
    assert all(link["token"] not in str(e) for e in entries)


def test_right_passwords_never_lock_and_failures_expire(api, client, alice, redis_client, make_app):
    f = api.upload(alice, b"guarded")
    link = make_link(client, alice, f["id"], password="pw")
    fast = make_app(share_password_max_failures=2, share_password_window=2).test_client()
    for _ in range(5):
        assert fast.get(f"{link_path(link)}/meta", headers={PW: "pw"}).status_code == 200
    assert [fast.get(link_path(link), headers={PW: "no"}).status_code for _ in range(3)] == [401, 401, 429]
    (key,) = redis_client.keys("files:{l:*}:pwfail")
    assert 0 < redis_client.ttl(key) <= 2
    deadline = time.monotonic() + 5
    while fast.get(link_path(link), headers={PW: "pw"}).status_code == 429:
        assert time.monotonic() < deadline
        time.sleep(0.2)


def test_private_links_open_only_for_the_owner_and_recipients(api, client, alice, bob, settings, redis_client):
    from redfile_dev.testing import auth_header, user_token

    carol = auth_header(user_token(settings, redis_client, "carol"))
    f = api.upload(alice, b"inner circle")
    link = make_link(client, alice, f["id"], visibility="private")
    assert link["visibility"] == "private"
    assert client.get(link_path(link)).json["error"]["code"] == "share_not_found"
    assert client.get(link_path(link), headers=bob).status_code == 404
    assert client.get(link_path(link), headers=carol).status_code == 404
    assert client.get(link_path(link), headers={"Authorization": "Bearer junk"}).status_code == 401
    assert client.get(link_path(link), headers=alice).data == b"inner circle"
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    assert client.get(link_path(link), headers=bob).data == b"inner circle"
    assert client.get(f"{link_path(link)}/meta", headers=carol).status_code == 404
    public = make_link(client, alice, f["id"])
    assert public["visibility"] == "public" and client.get(link_path(public)).data == b"inner circle"
    assert client.get(link_path(public), headers={"Authorization": "Bearer stale"}).data == b"inner circle"
    assert client.post(f"/files/{f['id']}/shares", headers=alice, json={"visibility": "friends"}).status_code == 422


def test_every_share_action_is_counted(app, api, client, alice, bob):
    registry = app.extensions["redfile_metrics"].registry

    def count(name, **labels):
        return registry.get_sample_value(name, {"service": "files", **labels}) or 0

    f = api.upload(alice, b"x")
    link = make_link(client, alice, f["id"], password="pw", max_downloads=1)
    client.get(link_path(link), headers={PW: "no"})
    client.get(link_path(link), headers={PW: "pw"})
    client.get(link_path(link), headers={PW: "pw"})
    client.delete(f"/shares/{link['id']}", headers=alice)
    client.post(f"/files/{f['id']}/recipients", headers=alice, json={"username": "bob"})
    client.get(f"/shared-with-me/{f['id']}", headers=bob)
    client.delete(f"/files/{f['id']}/recipients/bob", headers=alice)
    events = {e: count("redfile_files_share_events_total", event=e) for e in ("created", "revoked", "used", "denied", "gone")}
    assert events == {"created": 2, "revoked": 2, "used": 2, "denied": 1, "gone": 1}
    assert count("redfile_files_share_downloads_total") == 1
