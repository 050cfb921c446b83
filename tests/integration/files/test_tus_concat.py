"""tus concatenation and concatenation-unfinished: partial uploads joined by a final one, copied across slots."""

import base64
import os

import pytest

from redfile_common.errors import ApiError
from redfile_files.storage import keys
from redfile_files.tus.concat import Concatenation

from .tus_helpers import metadata, upload_id


def partial(tus, auth, data: bytes, sent: int | None = None) -> str:
    """A partial upload of ``data`` with its first ``sent`` bytes (all by default) sent."""
    url = tus.new(auth, len(data), concat="partial")
    sent = len(data) if sent is None else sent
    if sent:
        assert tus.patch(auth, url, 0, data[:sent]).status_code == 204
    return url


def final(tus, auth, *urls, name="joined.bin"):
    return tus.create(auth, concat="final;" + " ".join(urls), meta=metadata(filename=name))


def test_partials_joined_by_a_final_upload_make_one_ordinary_file(tus, client, alice):
    a, b = os.urandom(150), os.urandom(77)  # not multiples of the 64-byte chunk: every boundary moves
    pa, pb = partial(tus, alice, a), partial(tus, alice, b)
    head = tus.head(alice, pa)
    assert head.headers["Upload-Concat"] == "partial" and head.headers["Upload-Offset"] == "150"
    assert client.get("/files", headers=alice).json["items"] == []  # a finished partial is not a file
    resp = final(tus, alice, pa, f"http://localhost{pb}")  # absolute and relative URLs
    assert resp.status_code == 201, resp.get_json()
    url = resp.headers["Location"]
    assert resp.headers["Upload-Offset"] == resp.headers["Upload-Length"] == str(len(a + b))
    head = tus.head(alice, url)
    assert head.headers["Upload-Concat"] == f"final;{pa} http://localhost{pb}"
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "227"
    fid = upload_id(url)
    assert client.get(f"/files/{fid}", headers=alice).data == a + b
    assert [f["id"] for f in client.get("/files", headers=alice).json["items"]] == [fid]
    meta = client.get(f"/files/{fid}/meta", headers=alice).json
    assert meta["name"] == "joined.bin" and meta["chunk_size"] == 64 and meta["total_chunks"] == 4
    # the partials served their purpose: gone, and their reservations with them
    assert tus.head(alice, pa).status_code == 404 and tus.head(alice, pb).status_code == 404
    quota = client.get("/quota", headers=alice).json
    assert (quota["used_bytes"], quota["reserved_bytes"]) == (227, 0)


def test_a_patch_to_a_final_upload_is_403_and_changes_nothing(tus, alice, unchanged):
    pa = partial(tus, alice, b"abc")
    pb = partial(tus, alice, b"defg", sent=2)
    url = final(tus, alice, pa, pb).headers["Location"]
    with unchanged():
        for offset in (0, 7):
            assert tus.patch(alice, url, offset, b"x").status_code == 403
    tus.patch(alice, pb, 2, b"fg")
    assert tus.patch(alice, url, 7, b"").status_code == 403  # finished, still a final upload


def test_a_final_upload_must_name_partial_uploads_of_its_owner(tus, alice, bob, unchanged):
    mine = partial(tus, alice, b"abc")
    plain = tus.new(alice, 3)
    tus.patch(alice, plain, 0, b"abc")
    bobs = partial(tus, bob, b"abc")
    with unchanged():
        assert final(tus, alice, mine, plain).status_code == 400  # not a partial upload (a file now)
        assert final(tus, alice, mine, bobs).status_code == 404
        assert final(tus, alice, mine, "/tus/" + "0" * 32).status_code == 404
        for header in ("final;", "final", "final;/files/abc", "partial;x", "final; /tus/nope", "whole"):
            assert tus.create(alice, concat=header).status_code == 400, header
        assert tus.create(alice, 3, concat=f"final;{mine}").status_code == 400  # no Upload-Length on a final
        assert tus.create(alice, concat=f"final;{mine}", data=b"abc").status_code == 400  # no body


def test_concatenation_unfinished_the_final_is_made_when_its_last_partial_is_done(tus, client, alice):
    a, b = os.urandom(100), os.urandom(90)
    pa, pb = partial(tus, alice, a), partial(tus, alice, b, sent=40)
    resp = final(tus, alice, pa, pb)
    assert resp.status_code == 201 and "Upload-Offset" not in resp.headers
    url = resp.headers["Location"]
    head = tus.head(alice, url)
    assert head.status_code == 200 and "Upload-Offset" not in head.headers  # not concatenated yet
    assert head.headers["Upload-Length"] == "190"  # but its length can be told
    assert head.headers["Upload-Concat"] == f"final;{pa} {pb}"
    assert tus.patch(alice, pb, 40, b[40:]).status_code == 204  # the last byte of the last partial...
    head = tus.head(alice, url)
    assert head.headers["Upload-Offset"] == head.headers["Upload-Length"] == "190"  # ...made the final
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == a + b


def test_concatenation_unfinished_with_a_partial_of_deferred_length(tus, client, alice):
    pa = partial(tus, alice, b"hello ")
    pb = tus.new(alice, defer=True, concat="partial")
    url = final(tus, alice, pa, pb).headers["Location"]
    head = tus.head(alice, url)
    assert "Upload-Offset" not in head.headers and "Upload-Length" not in head.headers
    tus.patch(alice, pb, 0, b"world", headers={"Upload-Length": "5"})
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == b"hello world"


def test_a_final_whose_partial_vanished_says_so(tus, alice):
    pa, pb = partial(tus, alice, b"abc"), partial(tus, alice, b"def", sent=1)
    url = final(tus, alice, pa, pb).headers["Location"]
    assert tus.delete(alice, pb).status_code == 204
    resp = tus.head(alice, url)
    assert resp.status_code == 409
    assert tus.delete(alice, url).status_code == 204


def test_a_copy_cut_part_way_resumes_at_the_finals_offset(tus, client, alice, app, redis_client, monkeypatch):
    a, b = os.urandom(150), os.urandom(130)
    pa, pb = partial(tus, alice, a), partial(tus, alice, b, sent=10)
    url = final(tus, alice, pa, pb).headers["Location"]
    fid = upload_id(url)
    real = Concatenation._read

    def crashing(self, owner, partials, start):
        sent = 0
        for piece in real(self, owner, partials, start):
            yield piece
            sent += len(piece)
            if sent >= 130:
                raise ApiError("service_unavailable")  # as if the process died here

    monkeypatch.setattr(Concatenation, "_read", crashing)
    assert tus.patch(alice, pb, 10, b[10:]).status_code == 204  # the partial is stored; the copy broke
    copied = int(redis_client.hget(keys.upload(fid), "received_bytes"))
    assert copied == 128  # two whole chunks of the final made it
    assert "Upload-Offset" not in tus.head(alice, url).headers
    assert tus.head(alice, pa).status_code == 200  # the partials are kept until the final is a file
    monkeypatch.setattr(Concatenation, "_read", real)
    head = tus.head(alice, url)  # the next attempt resumes at 128
    assert head.headers["Upload-Offset"] == "280"
    assert client.get(f"/files/{fid}", headers=alice).data == a + b


@pytest.mark.parametrize("other_copies_at_piece", [0, 1, 3])
def test_two_copies_of_one_final_racing_make_one_file(tus, client, alice, monkeypatch, other_copies_at_piece):
    a, b = os.urandom(200), os.urandom(100)
    pa, pb = partial(tus, alice, a), partial(tus, alice, b, sent=50)
    url = final(tus, alice, pa, pb).headers["Location"]
    monkeypatch.setattr(Concatenation, "wake_finals", lambda self, owner, partial: None)
    tus.patch(alice, pb, 50, b[50:])  # every partial done, the final not copied yet
    real = Concatenation._read
    raced: list[bool] = []

    def racing(self, owner, partials, start):
        for i, piece in enumerate(real(self, owner, partials, start)):
            if i == other_copies_at_piece and not raced:
                raced.append(True)
                self.concatenate(owner, upload_id(url))  # another request does the whole copy meanwhile
            yield piece

    monkeypatch.setattr(Concatenation, "_read", racing)
    head = tus.head(alice, url)  # this request's copy loses every race from then on, and says so calmly
    assert raced and head.status_code == 200 and head.headers["Upload-Offset"] == "300"
    assert client.get(f"/files/{upload_id(url)}", headers=alice).data == a + b
    assert len(client.get("/files", headers=alice).json["items"]) == 1


@pytest.mark.parametrize("encrypted", [False, True])
def test_concatenated_chunks_are_resealed_under_the_finals_key(make_app, settings, redis_client, encrypted):
    from redfile_dev.testing import auth_header, user_token

    from .tus_helpers import Tus

    master_keys = "k1:" + base64.b64encode(b"1" * 32).decode() if encrypted else ""
    client = make_app(encryption_keys=master_keys).test_client()
    alice = auth_header(user_token(settings, redis_client, "alice"))
    tus = Tus(client)
    parts = [os.urandom(n) for n in (64, 1, 63, 130)]
    urls = [partial(tus, alice, p) for p in parts]
    resp = final(tus, alice, *urls)
    fid = upload_id(resp.headers["Location"])
    assert client.get(f"/files/{fid}/meta", headers=alice).json["encrypted"] is encrypted
    assert client.get(f"/files/{fid}", headers=alice).data == b"".join(parts)
