"""User accounts: create, read, list, change and delete (no Flask here).

Names listed in ADMIN_USERS are always admins: creating one gives the admin
role whatever was asked, and demoting one is refused (the setting would
promote it again at the next start).  Every change to a user's role, active
flag or password ends all of the user's sessions at once (see redfile_auth.storage).
"""

from __future__ import annotations

import base64
import binascii
import secrets
from datetime import UTC, datetime

from redfile_auth.passwords import Passwords
from redfile_auth.storage import AuthStore, UserRecord
from redfile_auth.validation import ROLES, invalid, is_valid_username, normalise_username, require_password, require_username
from redfile_common.errors import ApiError


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def encode_cursor(username: str) -> str:
    return base64.urlsafe_b64encode(username.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> str:
    try:
        name = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        name = ""
    if not is_valid_username(name):
        raise ApiError("validation_error", "The cursor is not valid.", details={"query": {"cursor": ["Not a valid cursor."]}})
    return name


class Users:
    def __init__(self, store: AuthStore, passwords: Passwords, admin_users: list[str]) -> None:
        self.store = store
        self.passwords = passwords
        self.admin_users = frozenset(normalise_username(n) for n in admin_users)

    def create(self, username: str, password: str, role: str = "user") -> tuple[UserRecord, bool]:
        """Create a user; returns (record, True), or (existing record, False) if the name is taken."""
        name = require_username(username)
        require_password(password)
        if role not in ROLES:
            raise invalid("role", f"Must be one of: {', '.join(ROLES)}.")
        if name in self.admin_users:
            role = "admin"
        now = utc_now()
        record = UserRecord(name, role, True, now, now, self.passwords.hash(password), id=secrets.token_hex(16))
        if self.store.create_user(record) is None:
            return self.store.get_user(name) or record, False
        return record, True

    def create_new(self, username: str, password: str, role: str = "user") -> UserRecord:
        """Create a user; 409 ``user_exists`` if the name is taken."""
        record, created = self.create(username, password, role)
        if not created:
            raise ApiError("user_exists")
        return record

    def get(self, username: str) -> UserRecord:
        record = self.find(username)
        if record is None:
            raise ApiError("user_not_found")
        return record

    def find(self, username: str) -> UserRecord | None:
        name = normalise_username(username)
        record = self.store.get_user(name) if is_valid_username(name) else None
        record = self.store.ensure_id(record) if record is not None else None
        return record if record is not None and record.id else None  # no id: deleted between the read and ensure_id

    def page(self, limit: int, cursor: str | None) -> tuple[list[UserRecord], str | None]:
        """One page of users by name; the cursor of the next page or None on the last."""
        after = decode_cursor(cursor) if cursor else None
        records, more = self.store.list_users(after, limit)
        return records, encode_cursor(records[-1].username) if more and records else None

    def update(self, username: str, *, role: str | None = None, active: bool | None = None, password: str | None = None) -> UserRecord:
        name = self.get(username).username
        updates: dict[str, str] = {}
        if role is not None:
            if role not in ROLES:
                raise invalid("role", f"Must be one of: {', '.join(ROLES)}.")
            if role != "admin" and name in self.admin_users:
                raise ApiError("conflict", "This user is listed in ADMIN_USERS and stays an admin.")
            updates["role"] = role
        if active is not None:
            updates["active"] = "1" if active else "0"
        if password is not None:
            updates["password_hash"] = self.passwords.hash(require_password(password))
        result = self.store.update_user(name, updates, utc_now())
        if result is None:
            raise ApiError("user_not_found")
        return result[0]

    def delete(self, username: str) -> None:
        name = normalise_username(username)
        if not is_valid_username(name) or not self.store.delete_user(name):
            raise ApiError("user_not_found")

    def promote(self, username: str) -> bool:
        """Make an existing user an admin; True if the role changed."""
        result = self.store.update_user(username, {"role": "admin"}, utc_now())
        return result is not None and result[1] is not None
