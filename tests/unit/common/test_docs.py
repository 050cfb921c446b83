"""Docs that must stay true: the README's configuration table names every setting; docs/security.md names real tests."""

import re
from pathlib import Path

from redfile_admin.settings import AdminSettings
from redfile_auth.settings import AuthSettings
from redfile_files.settings import FilesSettings

ROOT = Path(__file__).resolve().parents[3]
README = (ROOT / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    table = README[README.index("## Configuration") :]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    fields = set()
    for cls in (AuthSettings, FilesSettings, AdminSettings):
        fields |= {name.upper() for name in cls.model_fields if name != "service_name"}
    missing = fields - documented
    assert not missing, f"settings missing from the README table: {sorted(missing)}"


def test_every_test_docs_security_names_exists():
    """Each claim's proof is a test: ``path.py`` or ``path.py::test_name`` under tests/, and bare ``test_name`` s
    are tests of the file named last before them."""
    import ast

    text = (ROOT / "docs" / "security.md").read_text()
    current, missing, checked = None, [], 0
    for ref in re.findall(r"`((?:unit|integration|e2e)/[\w/]+\.py(?:::\w+)?|test_\w+)`", text):
        path, _, name = ref.partition("::")
        if path.endswith(".py"):
            file = ROOT / "tests" / path
            if not file.exists():
                missing.append(path)
                current = None
                continue
            current = {n.name for n in ast.walk(ast.parse(file.read_text())) if isinstance(n, ast.FunctionDef)}
            name = name or None
        else:
            name = path
        if name:
            checked += 1
            if current is None or name not in current:
                missing.append(ref)
    assert checked > 20 and not missing, missing
