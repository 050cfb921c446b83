from __future__ import annotations

import pytest

from redfile_auth.accounts.bootstrap import BootstrapError, bootstrap_admins


def test_creates_the_first_admin_with_admin_password(users):
    assert bootstrap_admins(users, ["Root", "boss"], "root-password", development=False)
    rec = users.get("root")
    assert rec.role == "admin" and rec.active
    assert users.passwords.verify(rec.password_hash, "root-password").ok
    assert users.find("boss") is None  # only the first name is created


def test_is_idempotent_and_never_resets_a_password(users):
    assert bootstrap_admins(users, ["root"], "root-password", development=False)
    users.update("root", password="changed-password")
    assert not bootstrap_admins(users, ["root"], "root-password", development=False)
    assert users.passwords.verify(users.get("root").password_hash, "changed-password").ok


def test_promotes_other_listed_users_that_exist(users, token_state):
    users.create_new("carol", "carol-password")
    v1 = token_state.current("carol")
    bootstrap_admins(users, ["root", "carol", "ghost"], "root-password", development=False)
    assert users.get("carol").role == "admin"
    assert token_state.current("carol") != v1  # her user-role tokens end
    assert users.find("ghost") is None


def test_outside_development_without_password_refuses(users):
    with pytest.raises(BootstrapError, match="ADMIN_PASSWORD"):
        bootstrap_admins(users, ["root"], None, development=False)
    assert users.find("root") is None


def test_outside_development_existing_admin_needs_no_password(users):
    bootstrap_admins(users, ["root"], "root-password", development=False)
    assert not bootstrap_admins(users, ["root"], None, development=False)


def test_development_generates_and_prints_once(users, capsys):
    assert bootstrap_admins(users, ["root"], None, development=True)
    err = capsys.readouterr().err
    assert "root" in err and "generated password" in err
    password = err.strip().rsplit(": ", 1)[1]
    assert users.passwords.verify(users.get("root").password_hash, password).ok
    assert not bootstrap_admins(users, ["root"], None, development=True)
    assert capsys.readouterr().err == ""


def test_invalid_admin_name_refuses(users):
    with pytest.raises(BootstrapError, match="ADMIN_USERS"):
        bootstrap_admins(users, ["not valid!"], "root-password", development=True)


def test_no_admin_users_is_nothing_to_do(users):
    assert not bootstrap_admins(users, [], None, development=False)
