"""The README's configuration table names every setting of every service."""

import re
from pathlib import Path

from redfile_admin.settings import AdminSettings
from redfile_auth.settings import AuthSettings
from redfile_files.settings import FilesSettings

README = (Path(__file__).resolve().parents[3] / "README.md").read_text()


def test_every_setting_is_in_the_readme_table():
    table = README[README.index("## Configuration") :]
    documented = set(re.findall(r"`([A-Z][A-Z0-9_]+)`", table))
    fields = set()
    for cls in (AuthSettings, FilesSettings, AdminSettings):
        fields |= {name.upper() for name in cls.model_fields if name != "service_name"}
    missing = fields - documented
    assert not missing, f"settings missing from the README table: {sorted(missing)}"
