"""The README's curl walkthrough, run verbatim against the live system."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def block(name: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- {name}:start -->\s*```sh\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def walkthrough() -> str:
    return block("walkthrough")


def test_readme_walkthrough_runs_verbatim(system, admin_password, tmp_path):
    env = dict(os.environ, BASE=system.base, ADMIN_PASSWORD=admin_password)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "download is byte-identical" in result.stdout
    assert "walkthrough complete" in result.stdout


def test_readme_large_files_with_curl_runs_verbatim(system, admin_password, tmp_path):
    """The same commands with a 24 MiB file (over a one-request upload, three session chunks); nothing left behind."""
    env = dict(os.environ, BASE=system.base, ADMIN_PASSWORD=admin_password, BIG_MIB="24")
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", block("large-files")], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "tus upload is byte-identical" in result.stdout and "session upload is byte-identical" in result.stdout
    assert "upload-offset" in result.stdout.lower()
    assert list(tmp_path.iterdir()) == []  # its scratch files removed
