"""AuthStore against fakeredis (everything but the Lua rotation, which is tested on real Redis)."""

from __future__ import annotations

import threading

from redis.crc import key_slot

from redfile_auth.keys import families_key, family_key, refresh_key, user_key
from redfile_auth.storage import FAMILY, REFRESH, USER_FAMILIES, AuthStore, UserRecord, login_scopes, refresh_family
from redfile_common.limiter import Scope
from redfile_common.tokens import TokenState


def record(name="alice", role="user", active=True, pw_hash="$argon2id$fake", uid="a1" * 16) -> UserRecord:
    return UserRecord(name, role, active, "2026-01-01T00:00:00Z", "2026-01-01T00:00:00Z", pw_hash, id=uid)


def test_create_stores_user_index_and_token_version(store, fake, token_state):
    version = store.create_user(record())
    assert version and token_state.current("alice") == version
    assert fake.hgetall("auth:user:{alice}") == {
        b"id": b"a1" * 16,
        b"username": b"alice",
        b"password_hash": b"$argon2id$fake",
        b"role": b"user",
        b"active": b"1",
        b"created_at": b"2026-01-01T00:00:00Z",
        b"updated_at": b"2026-01-01T00:00:00Z",
    }
    assert fake.zscore("auth:users", "alice") == 0
    assert store.get_user("alice") == record()


def test_create_twice_keeps_the_first(store, token_state):
    v1 = store.create_user(record(pw_hash="first"))
    assert store.create_user(record(pw_hash="second", role="admin")) is None
    assert store.get_user("alice").password_hash == "first"
    assert store.get_user("alice").role == "user"
    assert token_state.current("alice") == v1


def test_concurrent_creates_of_one_name_exactly_one_wins(fake, token_state):
    results = []
    barrier = threading.Barrier(8)

    def worker(i):
        s = AuthStore(fake, token_state)
        barrier.wait()
        results.append(s.create_user(record(pw_hash=f"h{i}")))

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r is not None for r in results) == 1


def test_record_hides_hash_in_repr_and_public_view():
    r = record(pw_hash="$argon2id$secret")
    assert "secret" not in repr(r)
    assert "password_hash" not in r.public()
    assert r.public() == {
        "id": "a1" * 16,
        "username": "alice",
        "role": "user",
        "active": True,
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
    }


def test_a_record_stored_before_ids_gets_one_once_and_keeps_it(store, fake):
    store.create_user(record(uid=""))
    fake.hdel("auth:user:{alice}", "id")
    legacy = store.get_user("alice")
    assert legacy.id == ""
    first = store.ensure_id(legacy)
    assert len(first.id) == 32 and store.ensure_id(legacy).id == first.id == fake.hget("auth:user:{alice}", "id").decode()
    store.delete_user("alice")
    assert store.ensure_id(legacy).id == "" and not fake.exists("auth:user:{alice}")  # gone meanwhile: nothing written


def test_user_and_version(store):
    assert store.user_and_version("nobody") == (None, None)
    version = store.create_user(record())
    assert store.user_and_version("alice") == (record(), version)


def test_list_users_pages_by_name(store):
    for name in ["dave", "alice", "carol", "bob", "erin"]:
        store.create_user(record(name))
    page, more = store.list_users(None, 2)
    assert [r.username for r in page] == ["alice", "bob"] and more
    page, more = store.list_users("bob", 2)
    assert [r.username for r in page] == ["carol", "dave"] and more
    page, more = store.list_users("dave", 2)
    assert [r.username for r in page] == ["erin"] and not more
    page, more = store.list_users("erin", 2)
    assert page == [] and not more


def test_update_changes_fields_bumps_version_and_revokes_families(store, fake, token_state):
    v1 = store.create_user(record())
    f1 = store.start_family(store.new_family(), "alice", "h1", v1, 3600, "now")
    f2 = store.start_family(store.new_family(), "alice", "h2", v1, 3600, "now")
    updated, v2 = store.update_user("alice", {"role": "admin"}, "2026-02-02T00:00:00Z")
    assert updated.role == "admin" and updated.updated_at == "2026-02-02T00:00:00Z"
    assert v2 and v2 != v1 and token_state.current("alice") == v2
    assert store.get_user("alice").role == "admin"
    assert not fake.exists(family_key(f1)) and not fake.exists(family_key(f2))
    assert not fake.exists(families_key("alice"))


def test_update_without_a_real_change_keeps_sessions(store, fake, token_state):
    v1 = store.create_user(record())
    family = store.start_family(store.new_family(), "alice", "h1", v1, 3600, "now")
    updated, version = store.update_user("alice", {"role": "user", "active": "1"}, "later")
    assert version is None and updated.updated_at == "2026-01-01T00:00:00Z"
    assert token_state.current("alice") == v1
    assert fake.exists(family_key(family))


def test_update_unknown_user(store):
    assert store.update_user("ghost", {"role": "admin"}, "now") is None
    assert store.get_user("ghost") is None


def test_delete_removes_everything_of_the_user(store, fake, token_state):
    v1 = store.create_user(record())
    family = store.start_family(store.new_family(), "alice", "h1", v1, 3600, "now")
    assert store.delete_user("alice")
    assert store.get_user("alice") is None
    assert fake.zscore("auth:users", "alice") is None
    assert token_state.current("alice") is None
    assert not fake.exists(family_key(family)) and not fake.exists(families_key("alice"))
    assert not store.delete_user("alice")


def test_replace_password_hash_only_when_unchanged(store):
    store.create_user(record(pw_hash="old"))
    assert not store.replace_password_hash("alice", "other", "new")
    assert store.get_user("alice").password_hash == "old"
    assert store.replace_password_hash("alice", "old", "new")
    assert store.get_user("alice").password_hash == "new"


def test_start_family_and_peek(store, fake):
    family = store.start_family(store.new_family(), "alice", "abc", "v1", 3600, "now")
    assert store.peek_refresh("abc", family) == ("alice", family)
    assert store.peek_refresh("abc", "another-family") is None  # a token naming another family finds nothing
    assert store.peek_refresh("nope", family) is None
    token = f"{REFRESH}{{{family}}}:abc"
    assert fake.hgetall(token) == {b"username": b"alice", b"family": family.encode(), b"version": b"v1", b"used": b"0"}
    for key in (token, f"{FAMILY}{{{family}}}", USER_FAMILIES + "{alice}"):
        assert 3500 < fake.ttl(key) <= 3600
    store.revoke_family("alice", family, 900)
    assert not fake.exists(f"{FAMILY}{{{family}}}")
    assert not fake.sismember(USER_FAMILIES + "{alice}", family)
    assert 900 < fake.ttl(f"rf:tokdeny:family:{{{family}}}") <= 905  # its access tokens are refused while they can live


def test_a_refresh_token_names_its_family_and_every_key_of_a_family_or_a_user_shares_one_slot(store):
    family = store.new_family()
    token = store.new_refresh_token(family)
    assert refresh_family(token) == family and refresh_family("no-family-in-it") is None
    assert len({key_slot(k.encode()) for k in (refresh_key("h", family), family_key(family), TokenState.family_deny_key(family))}) == 1
    assert len({key_slot(k.encode()) for k in (user_key("alice"), families_key("alice"), TokenState.version_key("alice"))}) == 1


def test_login_scopes_keep_the_auth_key_names_each_scope_in_one_cluster_slot():
    (user, pair, ip), wait = login_scopes("alice", "10.0.0.1", per_client=2, per_user=3, per_ip=5)
    assert user == Scope("user", "auth:ratelimit:user:{alice}", "auth:ratelimit:checking:user:{alice}", 3, slows=True)
    assert pair == Scope("client", "auth:ratelimit:pair:{alice:10.0.0.1}", "auth:ratelimit:checking:pair:{alice:10.0.0.1}", 2)
    assert ip == Scope("ip", "auth:ratelimit:ip:{10.0.0.1}", "auth:ratelimit:checking:ip:{10.0.0.1}", 5)
    assert wait == "auth:ratelimit:wait:{alice}:10.0.0.1"
    # the limiter's scripts touch one scope each: a scope's keys (and the slowing scope's cooldown) share a slot
    assert len({key_slot(k.encode()) for k in (user.failures_key, user.checks_key, wait)}) == 1
    for scope in (pair, ip):
        assert key_slot(scope.failures_key.encode()) == key_slot(scope.checks_key.encode())
    # not a possible username: the address only, and nothing to wait on
    assert login_scopes(None, "10.0.0.1", per_client=2, per_user=3, per_ip=5) == ([ip], None)
