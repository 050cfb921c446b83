"""A store written before auth's keys carried hash tags: renamed once at start-up, sessions kept."""

from __future__ import annotations

import hashlib
import threading

from redis.cluster import RedisCluster

from redfile_auth.migration import MARK, migrate
from redfile_auth.passwords import Passwords
from redfile_common.app import redfile
from redfile_dev.testing import auth_header

from .conftest import ADDR, CHEAP_ARGON2

PASSWORD = "password-123"


def write_old_layout(r, name: str = "carol", family: str = "famold", version: str = "v-old") -> str:
    """Carol as an earlier release stored her: a user, a token version, one login; her refresh token."""
    passwords = Passwords(time_cost=1, memory_kib=CHEAP_ARGON2["argon2_memory_kib"], parallelism=1)
    r.hset(
        f"auth:user:{name}",
        mapping={
            "id": "c" * 32,
            "username": name,
            "password_hash": passwords.hash(PASSWORD),
            "role": "user",
            "active": "1",
            "created_at": "2026-01-01T00:00:00Z",
            "updated_at": "2026-01-01T00:00:00Z",
        },
    )
    r.zadd("auth:users", {name: 0})
    r.set(f"rf:tokstate:{name}", version)
    r.hset(f"auth:family:{family}", mapping={"username": name, "created_at": "2026-01-01T00:00:00Z"})
    r.expire(f"auth:family:{family}", 3600)
    r.sadd(f"auth:user-families:{name}", family)
    r.expire(f"auth:user-families:{name}", 3600)
    refresh = f"legacy-refresh-token-of-{name}"
    sha = hashlib.sha256(refresh.encode()).hexdigest()
    r.hset(f"auth:refresh:{sha}", mapping={"username": name, "family": family, "version": version, "used": "0"})
    r.expire(f"auth:refresh:{sha}", 3600)
    return refresh


def test_start_up_renames_the_old_keys_and_their_sessions_keep_working(make_app, redis_client):
    legacy_refresh = write_old_layout(redis_client)
    app = make_app()
    rf = redfile(app)
    assert redis_client.get(MARK) == b"2"
    for old in ("auth:user:carol", "rf:tokstate:carol", "auth:family:famold", "auth:user-families:carol"):
        assert not redis_client.exists(old), old
    assert redis_client.hget("auth:user:{carol}", "id") == b"c" * 32
    assert redis_client.get("rf:tokstate:{carol}") == b"v-old"
    assert 3500 < redis_client.ttl("auth:family:{famold}") <= 3600  # the TTL came along
    assert redis_client.sismember("auth:user-families:{carol}", "famold")

    access, _ = rf.user_tokens.mint(username="carol", role="user", scopes=["files:read"], version="v-old", ttl=60, family="famold")
    client = app.test_client()
    assert client.get("/auth/me", headers=auth_header(access)).status_code == 200  # an access token issued before
    assert (
        client.post("/auth/login", json={"username": "carol", "password": PASSWORD}, environ_base={"REMOTE_ADDR": ADDR}).status_code == 200
    )

    refreshed = client.post("/auth/refresh", json={"refresh_token": legacy_refresh})
    if isinstance(redis_client, RedisCluster):
        assert refreshed.status_code == 401  # tokens issued before live on a single Redis only: log in again
        return
    revoked, _ = rf.user_tokens.mint(username="carol", role="user", scopes=["files:read"], version="v-old", ttl=60, family="famgone")
    redis_client.set("rf:tokdeny:family:famgone", "1", ex=60)  # a family revoked just before the upgrade
    assert client.get("/auth/me", headers=auth_header(revoked)).status_code == 401
    assert refreshed.status_code == 200, refreshed.json
    successor = refreshed.json["refresh_token"]
    assert successor.startswith("famold.")  # the successor names its family
    successor = client.post("/auth/refresh", json={"refresh_token": successor}).json["refresh_token"]
    assert successor.startswith("famold.")
    assert client.post("/auth/refresh", json={"refresh_token": legacy_refresh}).status_code == 401  # reuse ...
    assert client.post("/auth/refresh", json={"refresh_token": successor}).status_code == 401  # ... ends the family
    assert client.get("/auth/me", headers=auth_header(access)).status_code == 401


def test_a_second_start_up_moves_nothing_and_keeps_what_was_written_since(make_app, redis_client):
    write_old_layout(redis_client)
    make_app()
    redis_client.set("rf:tokstate:{carol}", "v-new")
    assert migrate(redis_client) == 0
    make_app()
    assert redis_client.get("rf:tokstate:{carol}") == b"v-new"


def test_replicas_starting_together_move_each_key_once(redis_client):
    for i in range(5):
        write_old_layout(redis_client, name=f"user{i}", family=f"fam{i}", version=f"v{i}")
    moved, barrier = [], threading.Barrier(4)

    def replica():
        barrier.wait(10)
        moved.append(migrate(redis_client, wait_seconds=10))

    threads = [threading.Thread(target=replica) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(moved) == [0, 0, 0, 20]  # one walked (4 keys a user), the others waited for its mark
    assert [redis_client.get(f"rf:tokstate:{{user{i}}}") for i in range(5)] == [f"v{i}".encode() for i in range(5)]
    assert redis_client.get(MARK) == b"2"
