"""Telling a recipients row stored before account ids (username -> created_at) from an account row."""

from __future__ import annotations

from redfile_files.storage.recipient_rows import legacy_name, row_name

UID = "0123456789abcdef0123456789abcdef"


def test_a_name_row_is_a_username_with_a_timestamp():
    assert legacy_name("bob", "2025-01-31T12:00:00Z") == "bob"
    assert legacy_name("Bob", "1700000000") == "bob" and legacy_name("bob", "1700000000.25") == "bob"
    assert row_name("carol.x", "2025-01-31T12:00:00+00:00") == "carol.x"


def test_an_account_row_stays_one_even_when_its_name_looks_like_a_number():
    assert legacy_name(UID, "bob") is None and legacy_name(UID, "1700000000") is None
    assert row_name(UID, "1700000000") == "1700000000"


def test_anything_else_is_not_a_name_row():
    assert legacy_name("bob", "carol") is None and legacy_name("b", "1700000000") is None and legacy_name("bob", "") is None
