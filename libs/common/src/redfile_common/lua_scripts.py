"""Lua scripts as ``.lua`` files beside the code that runs them, registered on a Redis client.

A script lives in a package's ``lua/`` folder as ``<name>.lua``.  Its header (leading ``--``
lines) names its KEYS, ARGV and reply.  A line ``--! include: <prelude>`` pulls in a shared
prelude (``lua/prelude/<prelude>.lua``, in the same package or in ``redfile_common``'s):
the prelude's code is joined onto the script's first line, ahead of its header comment, so a
line number in an error Redis reports (``@user_script:12``) is line 12 of the ``.lua`` file.
A prelude is therefore plain statements without trailing comments (its whole-line comments
are dropped); a prelude line that still holds ``--`` is refused when it is loaded.

A prelude's header declares what it defines (``--! exports: now now_us``); ``make lint``
(scripts/lint-lua.py) lints every script with those names as its only extra globals.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Any, Protocol, cast

import redis
from redis.commands.core import Script

INCLUDE = re.compile(r"^--!\s*include:\s*([a-z0-9_]+)\s*$")
EXPORTS = re.compile(r"^--!\s*exports:\s*(.*)$")


class LuaSourceError(ValueError):
    """A script or prelude that the loader cannot assemble."""


@dataclass(frozen=True)
class Prelude:
    name: str
    code: str  # one line
    exports: tuple[str, ...]


def _read(package: str, relative: str) -> str | None:
    path = resources.files(package).joinpath("lua", relative)
    return path.read_text(encoding="utf-8") if path.is_file() else None


@cache
def prelude(name: str, package: str) -> Prelude:
    """The prelude ``name``, from ``package``'s ``lua/prelude/`` or else ``redfile_common``'s."""
    for pkg in dict.fromkeys((package, "redfile_common")):
        text = _read(pkg, f"prelude/{name}.lua")
        if text is not None:
            break
    else:
        raise LuaSourceError(f"no Lua prelude {name!r} in {package} or redfile_common")
    exports: tuple[str, ...] = ()
    code = []
    for line in text.splitlines():
        stripped = line.strip()
        found = EXPORTS.match(stripped)
        if found:
            exports = tuple(found.group(1).split())
        elif stripped and not stripped.startswith("--"):
            if "--" in stripped:
                raise LuaSourceError(f"prelude {name!r}: a comment after code cannot be joined onto one line: {stripped!r}")
            code.append(stripped)
    return Prelude(name, " ".join(code), exports)


def includes(text: str) -> list[str]:
    """The preludes a script's ``--! include:`` lines name, in order."""
    return [m.group(1) for m in (INCLUDE.match(line.strip()) for line in text.splitlines()) if m]


@cache
def source(package: str, name: str) -> str:
    """The script ``lua/<name>.lua`` of ``package`` as Redis runs it: its preludes on its first line."""
    text = _read(package, f"{name}.lua")
    if text is None:
        raise LuaSourceError(f"no Lua script {name!r} in {package}")
    head = " ".join(prelude(p, package).code for p in includes(text))
    return f"{head} {text}" if head else text


class LuaScript(Protocol):
    """A registered script (redis-py's ``Script``) as callers use it: its reply is whatever the script returns."""

    sha: str
    script: str

    def __call__(self, keys: Sequence[str | bytes] | None = None, args: Sequence[Any] | None = None, client: Any = None) -> Any: ...


class Scripts:
    """The scripts of one package, registered on one client (``EVALSHA``, loaded again on ``NOSCRIPT``)."""

    def __init__(self, client: redis.Redis, package: str) -> None:
        self._client = client
        self._package = package
        self._registered: dict[str, Script] = {}

    def __getitem__(self, name: str) -> LuaScript:
        script = self._registered.get(name)
        if script is None:
            script = self._registered[name] = self._client.register_script(source(self._package, name))
        return cast(LuaScript, script)
