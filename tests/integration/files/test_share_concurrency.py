"""Download limits hold across threads and replicas: the download is reserved in one Lua script before streaming."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from .share_helpers import link_path, make_link


@pytest.mark.parametrize("limit, racers", [(1, 12), (3, 16)])
def test_n_simultaneous_downloads_of_a_limited_link(api, client, alice, make_app, limit, racers):
    data = b"z" * 500
    f = api.upload(alice, data)
    link = make_link(client, alice, f["id"], max_downloads=limit)
    replicas = [make_app() for _ in range(3)]  # separate apps (own pools), one Redis
    start = threading.Barrier(racers, timeout=10)

    def download(i):
        c = replicas[i % len(replicas)].test_client()
        start.wait()
        resp = c.get(link_path(link))
        return resp.status_code, resp.data

    with ThreadPoolExecutor(racers) as pool:
        results = list(pool.map(download, range(racers), timeout=30))
    ok = [body for status, body in results if status == 200]
    assert len(ok) == limit and all(body == data for body in ok)
    assert sorted(status for status, _ in results) == [200] * limit + [410] * (racers - limit)
    assert client.get("/shares", headers=alice).json["items"][0]["downloads"] == limit
