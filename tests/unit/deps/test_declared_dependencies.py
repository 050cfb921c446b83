"""Every third-party module a package's code imports is a dependency its own pyproject declares.

A module that comes in only through another dependency (marshmallow through apiflask, say)
can vanish when that one changes its own requirements.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = ["libs/common", "libs/dev", "services/auth", "services/files", "services/admin"]


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def declared(package: str) -> set[str]:
    project = tomllib.loads((ROOT / package / "pyproject.toml").read_text())["project"]
    return {normal(re.split(r"[<>=!~\[;\s]", spec, maxsplit=1)[0]) for spec in project["dependencies"]}


def imported(package: str) -> dict[str, set[str]]:
    """Top-level names of absolute imports (also those inside functions), with the files that import them."""
    found: dict[str, set[str]] = {}
    for path in sorted((ROOT / package / "src").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(ROOT)))
    return found


@pytest.mark.parametrize("package", PACKAGES)
def test_every_third_party_import_is_declared(package):
    own = {p.name for p in (ROOT / package / "src").iterdir() if p.is_dir()}
    distributions = packages_distributions()
    missing = {}
    for module, files in imported(package).items():
        if module in sys.stdlib_module_names or module in own or module == "__future__":
            continue
        providers = {normal(d) for d in distributions.get(module, [module])}
        if not providers & declared(package):
            missing[module] = sorted(files)
    assert missing == {}, f"{package}/pyproject.toml does not declare what these imports need: {missing}"


def test_the_check_sees_a_transitive_only_import():
    # marshmallow is imported by the admin service and provided by the marshmallow distribution
    assert "marshmallow" in imported("services/admin")
    assert "marshmallow" in declared("services/admin")
    assert "marshmallow" in {normal(d) for d in packages_distributions()["marshmallow"]}
    assert "marshmallow" not in declared("libs/common")  # libs/common imports it nowhere, so needs no declaration
