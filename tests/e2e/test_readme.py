"""The README's curl walkthrough, run verbatim against the live system."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def walkthrough() -> str:
    text = README.read_text()
    block = re.search(r"<!-- walkthrough:start -->\s*```sh\n(.*?)```\s*<!-- walkthrough:end -->", text, re.S)
    assert block, "README has no walkthrough block"
    return block.group(1)


def test_readme_walkthrough_runs_verbatim(system, admin_password, tmp_path):
    env = dict(os.environ, BASE=system.base, ADMIN_PASSWORD=admin_password)
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", walkthrough()], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "download is byte-identical" in result.stdout
    assert "walkthrough complete" in result.stdout
