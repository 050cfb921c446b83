from __future__ import annotations

import pytest

from redfile_auth.accounts.service import decode_cursor, encode_cursor
from redfile_common.errors import ApiError


def test_create_normalises_name_and_hashes_password(users):
    rec = users.create_new("Alice", "a-good-password")
    assert rec.username == "alice" and rec.role == "user" and rec.active
    assert rec.password_hash.startswith("$argon2id$")
    assert users.passwords.verify(users.get("ALICE").password_hash, "a-good-password").ok


def test_create_existing_is_user_exists(users):
    users.create_new("alice", "a-good-password")
    with pytest.raises(ApiError) as err:
        users.create_new("ALICE", "another-password")
    assert err.value.code == "user_exists" and err.value.status == 409


@pytest.mark.parametrize(
    "username,password,role,field",
    [("a", "a-good-password", "user", "username"), ("alice", "short", "user", "password"), ("alice", "a-good-password", "root", "role")],
)
def test_create_rejects_bad_input(users, username, password, role, field):
    with pytest.raises(ApiError) as err:
        users.create_new(username, password, role)
    assert err.value.status == 422 and field in (err.value.details or {})["json"]
    assert users.find("alice") is None


def test_names_in_admin_users_are_created_as_admin(users):
    assert users.create_new("Root", "a-good-password", "user").role == "admin"
    assert users.create_new("carol", "a-good-password", "admin").role == "admin"
    assert users.create_new("dave", "a-good-password").role == "user"


def test_get_unknown_or_invalid_is_not_found(users):
    for name in ("ghost", "!!", "x" * 100):
        with pytest.raises(ApiError) as err:
            users.get(name)
        assert err.value.code == "user_not_found"


def test_update(users, token_state):
    users.create_new("alice", "a-good-password")
    v1 = token_state.current("alice")
    rec = users.update("alice", active=False)
    assert not rec.active and token_state.current("alice") != v1
    rec = users.update("alice", role="admin", active=True, password="a-new-password")
    assert rec.role == "admin" and rec.active
    assert users.passwords.verify(users.get("alice").password_hash, "a-new-password").ok


def test_update_cannot_demote_a_configured_admin(users):
    users.create_new("root", "a-good-password")
    with pytest.raises(ApiError) as err:
        users.update("root", role="user")
    assert err.value.code == "conflict"
    assert users.get("root").role == "admin"


def test_update_and_delete_unknown(users):
    with pytest.raises(ApiError) as err:
        users.update("ghost", active=False)
    assert err.value.code == "user_not_found"
    with pytest.raises(ApiError) as err:
        users.delete("ghost")
    assert err.value.code == "user_not_found"


def test_delete(users, token_state):
    users.create_new("alice", "a-good-password")
    users.delete("Alice")
    assert users.find("alice") is None and token_state.current("alice") is None


def test_paging_walks_every_user_once(users, passwords):
    names = sorted(f"user{i:02d}" for i in range(7))
    for n in reversed(names):
        users.create_new(n, "a-good-password")
    seen, cursor = [], None
    while True:
        page, cursor = users.page(3, cursor)
        seen += [r.username for r in page]
        if cursor is None:
            break
    assert seen == names


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor("john.doe")) == "john.doe"
    for bad in ("!!!", "====", encode_cursor("NOT VALID"), "zz"):
        with pytest.raises(ApiError) as err:
            decode_cursor(bad)
        assert (err.value.code, err.value.status) == ("validation_error", 422)  # as on every list
