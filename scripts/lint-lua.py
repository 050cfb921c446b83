#!/usr/bin/env python3
"""Lint every Lua script of the project with luacheck (``make lint``).

Scripts are the ``lua/*.lua`` files of the packages under ``libs/`` and ``services/``; each is
checked with Redis's globals (``redis``, ``KEYS``, ``ARGV``) and the names its ``--! include:``
preludes export as its only extra globals, so a name neither defined nor included is an
error.  Preludes (``lua/prelude/*.lua``) are checked on their own, unused definitions allowed.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REDIS_GLOBALS = ["redis", "KEYS", "ARGV", "cjson", "bit", "struct", "cmsgpack", "unpack"]
INCLUDE = re.compile(r"^--!\s*include:\s*([a-z0-9_]+)\s*$", re.M)
EXPORTS = re.compile(r"^--!\s*exports:\s*(.*)$", re.M)


def luacheck(args: list[str]) -> int:
    """luacheck on one file (Lua 5.1, as Redis runs it; lines up to 140 as the Python); its report when it finds something."""
    done = subprocess.run(
        ["luacheck", "--std", "lua51", "--max-line-length", "140", "--codes", "--no-color", *args], capture_output=True, text=True
    )
    if done.returncode:
        print(done.stdout.strip(), file=sys.stderr)
    return done.returncode


def main() -> int:
    if shutil.which("luacheck") is None:
        print("luacheck is not installed: run scripts/install-lint-tools.sh (Debian's lua-check)", file=sys.stderr)
        return 2
    folders = sorted(p for p in ROOT.glob("*/*/src/*/**/lua") if p.is_dir() and ".venv" not in p.parts)
    preludes: dict[str, tuple[Path, list[str]]] = {}
    for folder in folders:
        for path in sorted(folder.glob("prelude/*.lua")):
            found = EXPORTS.search(path.read_text())
            preludes[f"{folder}:{path.stem}"] = (path, found.group(1).split() if found else [])
    status, checked = 0, 0
    for path, _ in sorted(preludes.values()):
        status |= luacheck(["--no-unused", "--read-globals", *REDIS_GLOBALS, "--", str(path)])
        checked += 1
    for folder in folders:
        for path in sorted(folder.glob("*.lua")):
            names: list[str] = []
            for include in INCLUDE.findall(path.read_text()):
                found = preludes.get(f"{folder}:{include}") or next(
                    (v for k, v in preludes.items() if k.endswith(f"redfile_common/lua:{include}")), None
                )
                if found is None:
                    print(f"{path.relative_to(ROOT)}: includes {include!r}, which no prelude defines", file=sys.stderr)
                    status |= 1
                    continue
                names += found[1]
            status |= luacheck(["--read-globals", *REDIS_GLOBALS, *names, "--", str(path)])
            checked += 1
    print(f"lint-lua: {checked} files checked")
    return 1 if status else 0


if __name__ == "__main__":
    sys.exit(main())
