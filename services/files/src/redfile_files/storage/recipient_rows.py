"""The two shapes of a row of ``files:{<id>}:recipients``, told apart.

* **account row** (what every share writes): the recipient's account id (auth's: 32 lowercase hex
  digits, random, never reused) -> their username;
* **name row** (stored by releases before account ids): a username -> when the share was made
  (``2025-01-31T12:00:00Z``, or a number of seconds).

A row is a name row only when its field is a username and its value a timestamp and it is not an
account row: an account row whose username happens to be all digits stays an account row.  Name
rows are converted by ``redfile-upgrade-shares`` (``maintenance.upgrade_shares``); until then the
readers take them as a share with the account that holds the name now.
"""

from __future__ import annotations

import re

from redfile_common.fields import USERNAME_PATTERN

ACCOUNT_ID_RE = re.compile(r"[0-9a-f]{32}")
USERNAME_RE = re.compile(USERNAME_PATTERN)
TIMESTAMP_RE = re.compile(r"\d{1,12}(?:\.\d+)?|\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?")


def is_account_row(field: str, value: str) -> bool:
    return bool(ACCOUNT_ID_RE.fullmatch(field)) and bool(USERNAME_RE.fullmatch(value))


def legacy_name(field: str, value: str) -> str | None:
    """The username a name row shares with (as auth names accounts: lower case); None for any other row."""
    if is_account_row(field, value) or not USERNAME_RE.fullmatch(field) or not TIMESTAMP_RE.fullmatch(value):
        return None
    return field.lower()


def row_name(field: str, value: str) -> str:
    """The username a row lists: an account row's value, a name row's field."""
    return legacy_name(field, value) or value
