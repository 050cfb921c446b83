"""A download-limited link counts a transfer once: resuming it is not another download (issue 18,
finding 5), and ranges never add up to more than one extra copy per counted download."""

from __future__ import annotations

import os

import pytest

from .share_helpers import make_link

SIZE = 1000
DATA = os.urandom(SIZE)
HERE = {"REMOTE_ADDR": "198.51.100.7"}
ELSEWHERE = {"REMOTE_ADDR": "198.51.100.8"}


@pytest.fixture
def link(api, client, alice):
    f = api.upload(alice, DATA, name="big.bin")
    return make_link(client, alice, f["id"], max_downloads=1)


def get(client, link, rng=None, where=HERE, method="GET"):
    headers = {"Range": f"bytes={rng}"} if rng else {}
    return client.open(f"/s/{link['token']}", method=method, headers=headers, environ_base=where)


def downloads(client, alice) -> int:
    return client.get("/shares", headers=alice).json["items"][0]["downloads"]


def test_a_resumed_download_does_not_use_up_the_link(client, alice, link):
    whole = get(client, link)
    assert whole.status_code == 200 and whole.data == DATA and downloads(client, alice) == 1
    # the connection broke at byte 600: the same client resumes, even though the link is used up now
    rest = get(client, link, "600-")
    assert rest.status_code == 206 and rest.data == DATA[600:] and downloads(client, alice) == 1
    assert get(client, link, method="HEAD").status_code == 200
    assert client.get(f"/s/{link['token']}/meta", environ_base=HERE).status_code == 410  # its metadata and QR code: used up
    assert client.get(f"/s/{link['token']}/qr.svg", environ_base=HERE).status_code == 410
    # another client gets nothing from it: the link is used up for everybody else
    assert get(client, link, "600-", where=ELSEWHERE).status_code == 410
    assert get(client, link, method="HEAD", where=ELSEWHERE).status_code == 410


def test_resumes_never_add_up_to_more_than_the_file_once(client, alice, link):
    assert get(client, link).status_code == 200  # counted: 1000 bytes of resumes allowed
    assert get(client, link, "1-600").data == DATA[1:601]  # 600
    assert get(client, link, "601-").data == DATA[601:]  # 399: 999 spent
    assert get(client, link, "999-").data == DATA[999:]  # 1: 1000 spent
    refused = get(client, link, "999-")  # would be a second copy: it counts, and there is none left
    assert refused.status_code == 410 and refused.json["error"]["code"] == "share_gone"
    assert downloads(client, alice) == 1


def test_a_request_from_byte_zero_is_a_new_download(client, alice, link):
    assert get(client, link, "0-9").data == DATA[:10] and downloads(client, alice) == 1
    assert get(client, link, "10-").data == DATA[10:]  # the rest of that transfer: free
    assert get(client, link, "0-").status_code == 410  # starting over is another download


def test_a_range_without_a_counted_download_before_it_counts(api, client, alice):
    f = api.upload(alice, DATA, name="big.bin")
    link = make_link(client, alice, f["id"], max_downloads=2)
    assert get(client, link, "500-").data == DATA[500:] and downloads(client, alice) == 1
    assert get(client, link, "100-199", where=ELSEWHERE).data == DATA[100:200] and downloads(client, alice) == 2
    assert get(client, link, "200-", where=ELSEWHERE).data == DATA[200:] and downloads(client, alice) == 2  # resumed


def test_the_allowance_lasts_the_window_and_belongs_to_the_link(client, alice, link, redis_client, settings):
    assert get(client, link).status_code == 200
    (key,) = redis_client.keys(f"files:{{{link['file_id']}}}:resume:{link['id']}:*")
    assert int(redis_client.get(key)) == SIZE
    assert settings.share_resume_window - 5 <= redis_client.ttl(key) <= settings.share_resume_window
    assert "198.51.100.7" not in key.decode()  # the address is keyed, never stored as it is
    get(client, link, "400-")
    assert int(redis_client.get(key)) == 400


def test_with_no_window_every_download_counts(make_app, alice, api):
    client = make_app(share_resume_window=0).test_client()
    f = type(api)(client).upload(alice, DATA, name="big.bin")
    link = make_link(client, alice, f["id"], max_downloads=1)
    assert get(client, link).status_code == 200
    assert get(client, link, "600-").status_code == 410


def test_an_unlimited_link_counts_each_transfer_once_too(api, client, alice):
    f = api.upload(alice, DATA, name="big.bin")
    link = make_link(client, alice, f["id"])
    get(client, link)
    get(client, link, "600-")
    get(client, link)
    assert downloads(client, alice) == 2
