"""The rules for usernames and passwords (pure functions, no I/O).

A username is 2-32 characters of ``[a-z0-9._-]`` starting with a letter or a
digit; input is lower-cased first, so ``Alice`` and ``alice`` are one user.
A password is 8-1024 characters; anything else about it is the user's
business (NIST SP 800-63B: length, not composition rules).
"""

from __future__ import annotations

import re

from redfile_common.errors import ApiError
from redfile_common.fields import PASSWORD_MAX, PASSWORD_MIN, USERNAME_MAX, USERNAME_MIN, USERNAME_RULE

ROLES = ("admin", "user")

_USERNAME = re.compile(USERNAME_RULE)


def normalise_username(raw: str) -> str:
    return raw.lower()


def is_valid_username(name: str) -> bool:
    """True for an already normalised name that follows the rules."""
    return _USERNAME.fullmatch(name) is not None


def username_problem(name: str) -> str | None:
    if not USERNAME_MIN <= len(name) <= USERNAME_MAX:
        return f"Must be {USERNAME_MIN} to {USERNAME_MAX} characters long."
    if not is_valid_username(name):
        return "Use only a-z, 0-9, '.', '_' and '-', and start with a letter or a digit."
    return None


def password_problem(password: str) -> str | None:
    if not PASSWORD_MIN <= len(password) <= PASSWORD_MAX:
        return f"Must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long."
    return None


def invalid(field: str, message: str) -> ApiError:
    """A 422 shaped like the schema validation errors (details under ``json``)."""
    return ApiError("validation_error", f"The request is not valid: {field}: {message}", details={"json": {field: [message]}})


def require_username(raw: str) -> str:
    name = normalise_username(raw)
    problem = username_problem(name)
    if problem:
        raise invalid("username", problem)
    return name


def require_password(password: str, field: str = "password") -> str:
    problem = password_problem(password)
    if problem:
        raise invalid(field, problem)
    return password
