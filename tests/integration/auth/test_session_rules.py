"""Login, logout and password change through the domain (no Flask), on real Redis."""

from __future__ import annotations

import pytest

from redfile_auth.keys import family_key, refresh_family
from redfile_auth.passwords import Passwords
from redfile_auth.sessions.service import Sessions, scopes_for, token_hash
from redfile_common.errors import ApiError
from redfile_common.tokens import TokenError

ADDR = "192.0.2.1"


def peek(store, refresh_token: str):
    return store.peek_refresh(token_hash(refresh_token), refresh_family(refresh_token))


@pytest.fixture
def alice(users):
    return users.create_new("alice", "alice-password")


def login_error(sessions, username, password, addr=ADDR) -> ApiError:
    with pytest.raises(ApiError) as err:
        sessions.login(username, password, addr)
    return err.value


def test_login_issues_a_verifiable_pair(sessions, alice, user_tokens, token_state, store):
    pair = sessions.login("Alice", "alice-password", ADDR)
    claims = user_tokens.verify(pair.access_token)
    token_state.check(claims)
    assert (claims.sub, claims.role, claims.scopes) == ("alice", "user", ("files:read", "files:write"))
    assert pair.expires_in == 900 and pair.token_type == "Bearer"
    assert len(pair.refresh_token) >= 43
    username, family = peek(store, pair.refresh_token)
    assert username == "alice" and family


def test_admin_scopes():
    assert scopes_for("admin") == ["files:read", "files:write", "admin"]
    assert scopes_for("user") == ["files:read", "files:write"]


def test_wrong_password_unknown_user_and_disabled_user_look_the_same(sessions, users, alice):
    users.create_new("bob", "bob-password")
    users.update("bob", active=False)
    errors = [
        login_error(sessions, "alice", "not-alices-password"),
        login_error(sessions, "nobody", "alice-password"),
        login_error(sessions, "bob", "bob-password"),
        login_error(sessions, "!!bad name!!", "alice-password"),
    ]
    assert {(e.code, e.status, e.message) for e in errors} == {("invalid_credentials", 401, "Wrong username or password.")}


class CountingHasher:
    """A real PasswordHasher that counts verifications."""

    def __init__(self, inner):
        self.inner, self.verified = inner, []

    def verify(self, stored_hash, password):
        self.verified.append(stored_hash)
        return self.inner.verify(stored_hash, password)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_every_failed_login_costs_one_argon2_verification(sessions, users, alice):
    users.create_new("bob", "bob-password")
    users.update("bob", active=False)
    counting = sessions.passwords.hasher = CountingHasher(sessions.passwords.hasher)
    try:
        for name, pw in [("alice", "wrong-password"), ("nobody", "wrong-password"), ("bob", "bob-password"), ("a", "x-password")]:
            before = len(counting.verified)
            login_error(sessions, name, pw)
            assert len(counting.verified) == before + 1, name
    finally:
        sessions.passwords.hasher = counting.inner
    dummy = sessions.passwords._dummy_hash
    assert counting.verified[1] == counting.verified[3] == dummy
    assert dummy not in (counting.verified[0], counting.verified[2])


def failures(store, kind: str, value: str) -> int:
    return int(store.redis.get(f"auth:ratelimit:{kind}:{{{value}}}") or 0)


def test_client_lockout_and_retry_after(sessions, users, alice, store):
    for _ in range(3):
        assert login_error(sessions, "alice", "wrong-password").code == "invalid_credentials"
    err = login_error(sessions, "alice", "alice-password")  # right password, but this client is locked out
    assert err.code == "too_many_requests" and err.status == 429
    assert 55 <= int(err.headers["Retry-After"]) <= 60
    assert sessions.login("alice", "alice-password", "198.51.100.7").access_token  # the owner, elsewhere, is not
    users.create_new("bob", "bob-password")
    assert sessions.login("bob", "bob-password", ADDR).access_token  # another user from the same address is not locked out
    assert (failures(store, "user", "alice"), failures(store, "pair", f"alice:{ADDR}"), failures(store, "ip", ADDR)) == (3, 3, 3)


def test_success_forgets_the_clients_failures_not_the_usernames(sessions, alice, store):
    for _ in range(2):
        login_error(sessions, "alice", "wrong-password")
    sessions.login("alice", "alice-password", ADDR)
    assert (failures(store, "user", "alice"), failures(store, "pair", f"alice:{ADDR}"), failures(store, "ip", ADDR)) == (2, 0, 2)
    for _ in range(2):
        login_error(sessions, "alice", "wrong-password")
    assert sessions.login("alice", "alice-password", ADDR)  # 429 without the reset (3 failures of this client)


def test_ip_lockout_covers_every_username(sessions, alice):
    for i in range(5):
        login_error(sessions, f"guess{i}", "wrong-password")
    assert login_error(sessions, "alice", "alice-password").code == "too_many_requests"
    assert sessions.login("alice", "alice-password", "203.0.113.9")


def test_login_rehashes_when_parameters_changed(store, limits, user_tokens, users, alice):
    stronger = Passwords(time_cost=2, memory_kib=1024, parallelism=1)
    sessions = Sessions(store, stronger, limits, user_tokens, access_ttl=900, refresh_ttl=3600)
    assert "t=1" in store.get_user("alice").password_hash
    sessions.login("alice", "alice-password", ADDR)
    new_hash = store.get_user("alice").password_hash
    assert "t=2" in new_hash and stronger.verify(new_hash, "alice-password").ok


def test_logout_denies_the_access_token_and_revokes_own_family(sessions, alice, user_tokens, token_state, store):
    first = sessions.login("alice", "alice-password", ADDR)
    other = sessions.login("alice", "alice-password", ADDR)
    claims = user_tokens.verify(first.access_token)
    sessions.logout(claims, first.refresh_token)
    with pytest.raises(TokenError, match="revoked"):
        token_state.check(claims)
    family = peek(store, first.refresh_token)[1]
    assert not store.redis.exists(family_key(family))
    other_family = peek(store, other.refresh_token)[1]
    assert store.redis.exists(family_key(other_family))
    token_state.check(user_tokens.verify(other.access_token))  # the other session goes on


def test_logout_leaves_another_users_family_alone(sessions, users, alice, user_tokens, store):
    users.create_new("bob", "bob-password")
    bobs = sessions.login("bob", "bob-password", ADDR)
    alices = sessions.login("alice", "alice-password", ADDR)
    sessions.logout(user_tokens.verify(alices.access_token), bobs.refresh_token)
    family = peek(store, bobs.refresh_token)[1]
    assert store.redis.exists(family_key(family))


def test_change_password_ends_sessions_and_issues_a_new_pair(sessions, alice, user_tokens, token_state, store):
    old = sessions.login("alice", "alice-password", ADDR)
    pair = sessions.change_password("alice", "alice-password", "a-brand-new-password", ADDR)
    with pytest.raises(TokenError, match="revoked"):
        token_state.check(user_tokens.verify(old.access_token))
    token_state.check(user_tokens.verify(pair.access_token))
    old_family = peek(store, old.refresh_token)[1]
    assert not store.redis.exists(family_key(old_family))
    assert login_error(sessions, "alice", "alice-password").code == "invalid_credentials"
    assert sessions.login("alice", "a-brand-new-password", ADDR)


def test_change_password_checks_the_current_one_and_the_rules(sessions, alice, store):
    with pytest.raises(ApiError) as err:
        sessions.change_password("alice", "wrong-password", "a-brand-new-password", ADDR)
    assert err.value.code == "invalid_credentials"
    assert failures(store, "user", "alice") == 1
    with pytest.raises(ApiError) as err:
        sessions.change_password("alice", "alice-password", "short", ADDR)
    assert err.value.status == 422 and "new_password" in (err.value.details or {})["json"]
    assert sessions.login("alice", "alice-password", ADDR)
