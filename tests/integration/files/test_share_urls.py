"""Share links and QR codes point where users are (issue 18, finding 2): PUBLIC_URL, else the
proxy's scheme and host behind TRUSTED_PROXY_HOPS, and never a forwarded host nobody trusted."""

from __future__ import annotations

import io

import pytest
import segno


def qr_svg(url: str) -> bytes:
    """The SVG the service draws for ``url`` (same error level, scale and border)."""
    buf = io.BytesIO()
    segno.make(url, error="m").save(buf, kind="svg", scale=6, border=4)
    return buf.getvalue()


FORWARDED = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "files.example.com"}


def test_links_and_qr_codes_are_built_on_public_url(make_app, api, alice):
    app = make_app(public_url="https://share.example.org/redfile/", trusted_proxy_hops=1)
    client = app.test_client()
    f = type(api)(client).upload(alice, b"photo")
    link = client.post(f"/files/{f['id']}/shares", headers={**alice, **FORWARDED}, json={}).json
    url = f"https://share.example.org/redfile/s/{link['token']}"
    assert (link["url"], link["qr_png"], link["qr_svg"]) == (url, f"{url}/qr.png", f"{url}/qr.svg")
    assert client.get(f"/s/{link['token']}/qr.svg", headers=FORWARDED).data == qr_svg(url)


def test_behind_a_trusted_proxy_links_use_its_scheme_and_host(make_app, api, alice):
    client = make_app(trusted_proxy_hops=1).test_client()
    f = type(api)(client).upload(alice, b"photo")
    link = client.post(f"/files/{f['id']}/shares", headers={**alice, **FORWARDED}, json={}).json
    url = f"https://files.example.com/s/{link['token']}"
    assert link["url"] == url
    assert client.get(f"/s/{link['token']}/qr.svg", headers=FORWARDED).data == qr_svg(url)


def test_a_forwarded_host_nobody_trusted_is_ignored(client, api, alice):
    f = api.upload(alice, b"photo")
    link = client.post(f"/files/{f['id']}/shares", headers={**alice, **FORWARDED}, json={}).json
    assert link["url"] == f"http://localhost/s/{link['token']}"  # the request's own host, not the header's
    assert client.get(f"/s/{link['token']}/qr.svg", headers=FORWARDED).data == qr_svg(link["url"])


@pytest.mark.parametrize("bad", ["files.example.com", "ftp://x", "https://", "https://x/?a=1", "https://x/#f", "https://u:p@x/"])
def test_a_public_url_that_is_not_one_is_refused_at_start(make_app, bad):
    with pytest.raises(ValueError, match="PUBLIC_URL"):
        make_app(public_url=bad)
