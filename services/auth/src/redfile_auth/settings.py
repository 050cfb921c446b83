"""Settings of the auth service (environment variables; see the README's table)."""

from __future__ import annotations

from typing import Literal

from redfile_common.settings import ServiceSettings


class AuthSettings(ServiceSettings):
    service_name: Literal["auth"] = "auth"
