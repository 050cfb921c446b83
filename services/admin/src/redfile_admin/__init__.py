"""Redfile admin service."""

from redfile_admin.app import create_app

__all__ = ["create_app"]
