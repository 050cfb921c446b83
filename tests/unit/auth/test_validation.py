from __future__ import annotations

import pytest

from redfile_auth.validation import is_valid_username, normalise_username, password_problem, require_password, require_username
from redfile_common.errors import ApiError


@pytest.mark.parametrize("name", ["ab", "a1", "9lives", "john.doe", "a_b-c.d", "x" * 32, "0" * 2])
def test_valid_usernames(name):
    assert is_valid_username(name)
    assert require_username(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "a",
        "",
        "x" * 33,
        ".alice",
        "_alice",
        "-alice",
        "al ice",
        "alice!",
        "al/ice",
        "ålice",
        "alice\n",
        "al:ice",
        "\u200b\u200b",
        "\ufeff\ufeff",
        "al\u200bice",
    ],
)
def test_invalid_usernames(name):
    assert not is_valid_username(normalise_username(name))
    with pytest.raises(ApiError) as err:
        require_username(name)
    assert err.value.code == "validation_error"
    assert err.value.status == 422
    assert "username" in (err.value.details or {})["json"]


def test_usernames_are_lower_cased_before_validation():
    assert require_username("Alice.Smith") == "alice.smith"
    assert require_username("BOB") == "bob"


@pytest.mark.parametrize("password", ["12345678", "x" * 1024, "correct horse battery staple", "ünïcødé!"])
def test_acceptable_passwords(password):
    assert password_problem(password) is None
    assert require_password(password) == password


@pytest.mark.parametrize("password", ["", "1234567", "x" * 1025])
def test_unacceptable_passwords(password):
    assert password_problem(password) is not None
    with pytest.raises(ApiError) as err:
        require_password(password, "new_password")
    assert err.value.status == 422
    assert "new_password" in (err.value.details or {})["json"]
