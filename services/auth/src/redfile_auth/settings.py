"""Settings of the auth service (environment variables; see the README's table).

Every field is read from the variable of the same name, upper-cased
(``ACCESS_TOKEN_TTL``, ``ARGON2_MEMORY_KIB``, ...).  ``ADMIN_USERS`` comes from
the shared base class.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from redfile_auth.validation import PASSWORD_MAX, PASSWORD_MIN
from redfile_common.settings import ServiceSettings

DAY = 24 * 3600


class AuthSettings(ServiceSettings):
    service_name: Literal["auth"] = "auth"

    # Password of the first ADMIN_USERS name, used only to create it when missing.
    admin_password: str | None = Field(default=None, repr=False)

    access_token_ttl: int = Field(default=900, ge=30, le=DAY)
    refresh_token_ttl: int = Field(default=30 * DAY, ge=60, le=365 * DAY)

    # docs/security.md, "Guessing does not pay": the client and the address lock, the username only slows
    login_max_failures_per_client: int = Field(default=5, ge=1)
    login_max_failures_per_user: int = Field(default=20, ge=1)
    login_max_failures_per_ip: int = Field(default=50, ge=1)
    login_failure_window: int = Field(default=900, ge=1, le=DAY)
    login_slowdown_max: int = Field(default=60, ge=1, le=3600)

    argon2_time_cost: int = Field(default=3, ge=1, le=20)
    argon2_memory_kib: int = Field(default=65536, ge=8, le=4 * 1024 * 1024)
    argon2_parallelism: int = Field(default=4, ge=1, le=64)

    @field_validator("admin_password", mode="before")
    @classmethod
    def _empty_is_unset(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("admin_password")
    @classmethod
    def _admin_password_rules(cls, value: str | None) -> str | None:
        if value is not None and not PASSWORD_MIN <= len(value) <= PASSWORD_MAX:
            raise ValueError(f"must be {PASSWORD_MIN} to {PASSWORD_MAX} characters long")
        return value

    @model_validator(mode="after")
    def _check_auth(self) -> AuthSettings:
        if self.argon2_memory_kib < 8 * self.argon2_parallelism:
            raise ValueError("ARGON2_MEMORY_KIB must be at least 8 x ARGON2_PARALLELISM")
        if self.access_token_ttl >= self.refresh_token_ttl:
            raise ValueError("ACCESS_TOKEN_TTL must be shorter than REFRESH_TOKEN_TTL")
        return self
