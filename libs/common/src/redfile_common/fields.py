"""Schema fields shared by the services' apiflask schemas, and the account rules they document.

The rules for usernames and passwords are auth's (``redfile_auth.validation``
checks them, from these constants); files and admin take usernames too, and
their documents state the same rules from the same constants.  ``username`` and
``password`` only document them (minLength, maxLength, pattern): the domain
checks them and answers its own 422, and a login with a name that breaks them
is the 401 of any unknown user.
"""

from __future__ import annotations

import math
from typing import Any

from apiflask.fields import Boolean, Integer, String

# The largest integer a byte count may be anywhere: exact as a double, so Lua and JSON clients read it right
MAX_SAFE_INTEGER = 2**53 - 1
USERNAME_MIN, USERNAME_MAX = 2, 32
PASSWORD_MIN, PASSWORD_MAX = 8, 1024
# what a username may be once lower-cased; the pattern documents what a client may send (any case)
USERNAME_RULE = rf"[a-z0-9][a-z0-9._-]{{{USERNAME_MIN - 1},{USERNAME_MAX - 1}}}"
USERNAME_PATTERN = rf"^[A-Za-z0-9][A-Za-z0-9._-]{{{USERNAME_MIN - 1},{USERNAME_MAX - 1}}}$"


def username(description: str = "An account's name (case-insensitive).", **options: Any) -> String:
    rules = {"minLength": USERNAME_MIN, "maxLength": USERNAME_MAX, "pattern": USERNAME_PATTERN}
    return String(metadata={**rules, "description": description}, **options)


def password(description: str = "A password.", **options: Any) -> String:
    rules = {"minLength": PASSWORD_MIN, "maxLength": PASSWORD_MAX}
    return String(metadata={**rules, "description": f"{description} {PASSWORD_MIN} to {PASSWORD_MAX} characters."}, **options)


class StrictBoolean(Boolean):
    """A JSON ``true``/``false`` only: ``"yes"``, ``1`` or ``"false"`` are refused, not guessed at."""

    def _deserialize(self, value, attr, data, **kwargs):
        if not isinstance(value, bool):
            raise self.make_error("invalid", input=value)
        return value


class JsonInteger(Integer):
    """A JSON number that is an integer, as JSON Schema counts them: ``1106`` and ``1106.0``.

    Never a bool, a string (``"12"``) or a fraction (``1106.5``, which a non-strict
    marshmallow ``Integer`` would truncate); the value read is always an ``int``.
    """

    def __init__(self, **kwargs):
        super().__init__(strict=True, **kwargs)

    def _deserialize(self, value, attr, data, **kwargs):
        if isinstance(value, float) and math.isfinite(value) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.make_error("invalid")
        return super()._deserialize(value, attr, data, **kwargs)
