"""``limiter.client_id``: what a failure is counted against (no Redis)."""

from __future__ import annotations

import pytest

from redfile_common.limiter import client_id


@pytest.mark.parametrize(
    "addr, client",
    [
        ("203.0.113.9", "203.0.113.9"),
        (" 203.0.113.9 ", "203.0.113.9"),
        ("::ffff:203.0.113.9", "203.0.113.9"),  # an IPv4 client seen through an IPv6 socket
        ("2001:db8:1:2:aaaa::1", "2001:db8:1:2::/64"),  # one host's /64: rotating within it gains nothing
        ("2001:db8:1:2:bbbb::7", "2001:db8:1:2::/64"),
        ("2001:db8:1:3::1", "2001:db8:1:3::/64"),
    ],
)
def test_addresses(addr, client):
    assert client_id(addr) == client


def test_anything_else_is_a_digest_never_free_text():
    odd = client_id("evil}\r\n:key")
    assert odd.startswith("x-") and len(odd) == 18 and odd == client_id("evil}\r\n:key")
    assert client_id(None) == client_id("") != client_id("unknown")
