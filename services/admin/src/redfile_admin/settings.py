"""Settings of the admin service (environment variables; see the README's table)."""

from __future__ import annotations

from typing import Literal

from redfile_common.settings import ServiceSettings


class AdminSettings(ServiceSettings):
    service_name: Literal["admin"] = "admin"
