"""Who a username is now: the account's immutable id, asked of auth over HTTP (``GET /internal/users/<name>``).

A share names its recipient by that id, never by the name's text: a name deleted and created
again is another account (another id), so it inherits nothing shared with the old one.  The
caller's own id comes signed in their access token (the ``uid`` claim), so reading what is
shared with you needs no call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote

from redfile_common.errors import ApiError


class Caller(Protocol):
    """What ``redfile_common.service_client.ServiceClient`` offers."""

    def call(self, service: str, method: str, path: str, *, expect=(200,), **kwargs: Any) -> Any: ...


@dataclass(frozen=True)
class Account:
    id: str
    username: str


def segment(value: str) -> str:
    """One path segment ("." and ".." encoded too, or the HTTP client resolves them as dot segments)."""
    return value.replace(".", "%2E") if value in (".", "..") else quote(value, safe="")


def uid_of(principal) -> str:
    """The caller's account id, signed in their access token ("" in a token minted before ids: such a caller sees no shares)."""
    return principal.claims.uid


class NoAuth:
    """A caller with no auth service behind it (a domain built without one): every look-up is a 503."""

    def call(self, service: str, method: str, path: str, *, expect=(200,), **kwargs: Any) -> Any:
        raise ApiError("service_unavailable", f"No {service} service is configured.")


class Directory:
    def __init__(self, caller: Caller | None = None) -> None:
        self.caller = caller or NoAuth()

    def account(self, username: str) -> Account:
        """The account named ``username`` now; 404 ``user_not_found`` when there is none (auth's answer passed on)."""
        body = self.caller.call("auth", "GET", f"/internal/users/{segment(username)}")
        uid, name = (body.get("id"), body.get("username")) if isinstance(body, dict) else (None, None)
        if not (isinstance(uid, str) and uid and isinstance(name, str) and name):
            raise ApiError("bad_gateway", "The auth service sent an unexpected answer.")
        return Account(uid, name)

    def lookup(self, username: str) -> Account | None:
        """The account named ``username`` now, or None when auth has none (any other failure raises)."""
        try:
            return self.account(username)
        except ApiError as exc:
            if exc.code == "user_not_found":
                return None
            raise

    def holds(self, username: str, account: str | None) -> bool:
        """Whether the name is ``account``'s or nobody's now (``account`` None: only nobody's)."""
        found = self.lookup(username)
        return found is None or found.id == account
