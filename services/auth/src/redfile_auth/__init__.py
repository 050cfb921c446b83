"""Redfile auth service."""

from redfile_auth.app import create_app

__all__ = ["create_app"]
