"""Argon2id password hashing.

``verify`` always runs one Argon2 verification, also when there is no stored
hash (unknown user): it then checks the password against a dummy hash made
with the same parameters, so a wrong username costs the same time as a wrong
password and the response time does not tell which names exist.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass

import structlog
from argon2 import PasswordHasher, Type
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

log = structlog.get_logger("redfile.auth")


@dataclass(frozen=True)
class Verdict:
    ok: bool
    needs_rehash: bool = False


class Passwords:
    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self.hasher = PasswordHasher(time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism, type=Type.ID)
        # Made once per process; its password is thrown away, so it never verifies.
        self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(24))

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)

    def verify(self, stored_hash: str | None, password: str) -> Verdict:
        """Check ``password``; with ``stored_hash=None`` spend the same time and fail."""
        if stored_hash is None:
            self._verify(self._dummy_hash, password)
            return Verdict(ok=False)
        if not self._verify(stored_hash, password):
            return Verdict(ok=False)
        return Verdict(ok=True, needs_rehash=self.hasher.check_needs_rehash(stored_hash))

    def _verify(self, stored_hash: str, password: str) -> bool:
        try:
            return self.hasher.verify(stored_hash, password)
        except VerifyMismatchError:
            return False
        except (InvalidHashError, VerificationError):
            # A corrupt stored hash: refuse the login, and say so in the log.
            log.error("password_hash_invalid")
            return False
