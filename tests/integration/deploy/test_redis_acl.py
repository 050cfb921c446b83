"""The ACL file, loaded into a real Redis: each user reaches its own key spaces and commands only."""

from __future__ import annotations

import pytest
import redis

NOPERM = redis.exceptions.NoPermissionError
# A refusal inside a Lua script comes back as a script error, not as NOPERM.
SCRIPT_NOPERM = r"(?i)no permissions|can't access|can't run"


def test_the_default_user_is_off(acl_redis, ops):
    anonymous = acl_redis.client(None)
    with pytest.raises((redis.exceptions.AuthenticationError, redis.exceptions.ResponseError), match=r"(?i)auth"):
        anonymous.ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        acl_redis.client("default", "").ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        acl_redis.client("default", acl_redis.passwords["redfile-ops"]).ping()
    rules = ops.acl_getuser("default")
    assert "off" in rules["flags"]
    assert rules["passwords"] == []


def test_a_wrong_password_is_refused(acl_redis):
    with pytest.raises(redis.exceptions.AuthenticationError):
        acl_redis.client("redfile-files", acl_redis.passwords["redfile-auth"]).ping()


def test_files_cannot_read_or_write_auth_keys(ops, as_user):
    ops.hset("auth:user:alice", mapping={"username": "alice", "password_hash": "x"})
    ops.set("auth:ratelimit:ip:1.2.3.4", 3)
    files = as_user("redfile-files")
    with pytest.raises(NOPERM):
        files.hgetall("auth:user:alice")
    with pytest.raises(NOPERM):
        files.get("auth:ratelimit:ip:1.2.3.4")
    with pytest.raises(NOPERM):
        files.delete("auth:user:alice")
    with pytest.raises(NOPERM):
        files.mget("rf:tokstate:alice", "auth:user:alice")
    assert ops.exists("auth:user:alice") == 1


def test_auth_cannot_read_or_write_files_keys(ops, as_user):
    ops.hset("files:meta:{f1}", mapping={"id": "f1", "owner": "alice"})
    ops.set("files:chunk:{f1}:0", b"secret bytes")
    auth = as_user("redfile-auth")
    with pytest.raises(NOPERM):
        auth.hgetall("files:meta:{f1}")
    with pytest.raises(NOPERM):
        auth.get("files:chunk:{f1}:0")
    with pytest.raises(NOPERM):
        auth.set("files:chunk:{f1}:0", b"overwritten")
    assert ops.get("files:chunk:{f1}:0") == b"secret bytes"


def test_token_state_is_written_by_auth_and_only_read_by_the_others(ops, as_user):
    auth = as_user("redfile-auth")
    auth.set("rf:tokstate:alice", "v1")
    auth.set("rf:tokdeny:jti1", "1", ex=60)
    for user in ("redfile-files", "redfile-admin"):
        client = as_user(user)
        assert client.mget("rf:tokstate:alice", "rf:tokdeny:jti1") == [b"v1", b"1"]
        with pytest.raises(NOPERM):
            client.set("rf:tokstate:alice", "forged")
        with pytest.raises(NOPERM):
            client.delete("rf:tokdeny:jti1")
    assert ops.get("rf:tokstate:alice") == b"v1"


def test_every_service_appends_to_the_audit_stream_and_only_admin_reads_it(ops, as_user):
    for user in ("redfile-auth", "redfile-files", "redfile-admin"):
        assert as_user(user).xadd("rf:audit", {"action": "x", "service": user}, maxlen=1000, approximate=True)
    for user in ("redfile-auth", "redfile-files"):
        with pytest.raises(NOPERM):
            as_user(user).xrevrange("rf:audit", count=1)
        with pytest.raises(NOPERM):
            as_user(user).xlen("rf:audit")
    # (Redis has no append-only permission: %W~ also lets DEL through for users that have DEL.)
    assert len(as_user("redfile-admin").xrevrange("rf:audit", count=10)) == 3
    with pytest.raises(NOPERM):
        as_user("redfile-admin").delete("rf:audit")


def test_admin_owns_no_keys(ops, as_user):
    ops.set("files:all", "x")
    ops.set("auth:users", "x")
    admin = as_user("redfile-admin")
    for key in ("files:all", "auth:users", "admin:anything", "rf:other"):
        with pytest.raises(NOPERM):
            admin.get(key)
    with pytest.raises(NOPERM):
        admin.set("admin:anything", "1")


@pytest.mark.parametrize("user", ["redfile-auth", "redfile-files", "redfile-admin", "redfile-probe"])
@pytest.mark.parametrize(
    "command",
    [
        ("FLUSHALL",),
        ("FLUSHDB",),
        ("KEYS", "*"),
        ("CONFIG", "GET", "*"),
        ("CONFIG", "SET", "appendonly", "no"),
        ("ACL", "LIST"),
        ("SWAPDB", "0", "1"),
        ("OBJECT", "ENCODING", "files:all"),
        ("SHUTDOWN",),
        ("SCRIPT", "FLUSH"),
        ("CLIENT", "LIST"),
        ("CLIENT", "KILL", "ID", "1"),
        ("MONITOR",),
        ("BGSAVE",),
        ("REPLICAOF", "NO", "ONE"),
        ("MODULE", "LIST"),
        ("FUNCTION", "FLUSH"),
        ("SUBSCRIBE", "x"),
    ],
)
def test_no_app_user_can_run_administrative_commands(as_user, ops, user, command):
    with pytest.raises(NOPERM):
        as_user(user).execute_command(*command)


@pytest.mark.parametrize("user", ["redfile-auth", "redfile-admin", "redfile-probe"])
def test_only_the_files_sweeper_may_scan(as_user, ops, user):
    with pytest.raises(NOPERM):
        as_user(user).scan(0)
    assert as_user("redfile-files").scan(0, match="files:*")[0] == 0


def test_a_lua_script_runs_with_the_callers_permissions(ops, as_user):
    ops.hset("auth:user:alice", "password_hash", "x")
    files = as_user("redfile-files")
    # Undeclared keys inside a script are checked too: files cannot reach auth's data via EVAL.
    with pytest.raises(redis.exceptions.ResponseError, match=SCRIPT_NOPERM):
        files.eval("return redis.call('HGET', 'auth:user:alice', 'password_hash')", 0)
    with pytest.raises(NOPERM):
        files.eval("return redis.call('GET', KEYS[1])", 1, "auth:user:alice")
    assert files.eval("return redis.call('SET', KEYS[1], ARGV[1])", 1, "files:meta:{x}", "v") == b"OK"
    auth = as_user("redfile-auth")
    with pytest.raises(redis.exceptions.ResponseError, match=SCRIPT_NOPERM):
        auth.eval("return redis.call('DBSIZE')", 0)  # a command outside auth's list
    with pytest.raises(NOPERM):
        auth.eval("return redis.call('GET', KEYS[1])", 1, "files:meta:{x}")


def test_the_probe_user_pings_and_reads_info_only(as_user, ops):
    probe = as_user("redfile-probe")
    assert probe.ping() is True
    assert "redis_version" in probe.info("server")
    with pytest.raises(NOPERM):
        probe.get("rf:tokstate:alice")
    with pytest.raises(NOPERM):
        probe.set("anything", "1")


def test_ops_can_do_anything(ops):
    assert ops.set("auth:user:x", "1") is True
    assert ops.config_get("appendonly") == {"appendonly": "yes"}
