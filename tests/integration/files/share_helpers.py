"""Helpers of the sharing tests."""

from __future__ import annotations

PW = "X-Share-Password"


def make_link(client, headers, file_id, **options):
    resp = client.post(f"/files/{file_id}/shares", headers=headers, json=options)
    assert resp.status_code == 201, resp.json
    return resp.json


def link_path(link) -> str:
    return f"/s/{link['token']}"


def files_keys(r) -> dict:
    """Every ``files:`` key with its value (the audit stream grows on reads of a link, so it is left out)."""
    state = {}
    for key in sorted(r.keys("files:*")):
        kind = r.type(key).decode()
        value = {"string": r.get, "hash": r.hgetall, "zset": lambda k: r.zrange(k, 0, -1, withscores=True)}[kind](key)
        state[key] = (kind, value)
    return state
