"""Shared test configuration: fixtures come from redfile_dev.testing; tiers from folders."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest_plugins = ["redfile_dev.testing"]

_TIERS = {"unit", "integration", "e2e"}


def pytest_collection_modifyitems(config, items):
    root = Path(__file__).parent
    for item in items:
        parts = Path(item.fspath).relative_to(root).parts
        if parts and parts[0] in _TIERS:
            item.add_marker(getattr(pytest.mark, parts[0]))
