"""The README's shell blocks, run verbatim and in order, in one shell in a scratch folder, against the live system:
as a newcomer pastes them after `make run`."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"
BLOCKS = ("walkthrough", "large-files", "sharing")  # every block the README says to paste, in its order


def block(name: str) -> str:
    text = README.read_text()
    found = re.search(rf"<!-- {name}:start -->\s*```sh\n(.*?)```\s*<!-- {name}:end -->", text, re.S)
    assert found, f"README has no {name} block"
    return found.group(1)


def test_the_blocks_are_the_readmes_in_its_order():
    text = README.read_text()
    marked = re.findall(r"<!-- ([a-z-]+):start -->", text)
    assert tuple(marked) == BLOCKS


def test_the_readmes_blocks_run_in_order_in_one_shell_and_leave_the_folder_as_it_was(system, admin_password, tmp_path):
    """The large file is 24 MiB here (over a one-request upload, three session chunks), 200 MiB as written."""
    script = "\n".join(block(name) for name in BLOCKS)
    env = dict(os.environ, BASE=system.base, ADMIN_PASSWORD=admin_password, BIG_MIB="24")
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    for line in (
        "download is byte-identical",
        "the range is byte-identical",
        "walkthrough complete",
        "tus upload is byte-identical",
        "session upload is byte-identical",
        "bob reads dana's file",
        "['report.bin', 'todo.txt']",
        "sharing complete",
    ):
        assert line in result.stdout, (line, result.stdout[-3000:])
    assert "upload-offset" in result.stdout.lower()
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # every block removed the files it wrote
