"""The layout's rules, read off the source: module size, one Redis boundary in the files service, no
private cross-module imports, no import cycles, no threads or clients made at import time."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
PACKAGES = sorted(p for pattern in ("services/*/src/*", "libs/*/src/*") for p in ROOT.glob(pattern) if (p / "__init__.py").exists())
MAX_LINES = 400
# Redis commands by their redis-py names: these are Redis wherever they are called; the generic ones
# (get, set, ...) only on something named like a Redis client.
REDIS_CALLS = {"pipeline", "execute_command", "register_script", "scan_iter", "evalsha", "expireat", "pexpire", "zrangebyscore"}
REDIS_CALLS |= {f"{t}{op}" for t in "hz" for op in ("get", "set", "getall", "mget", "del", "add", "score", "range", "rem", "card", "len")}
GENERIC_CALLS = {"get", "set", "delete", "exists", "scan", "expire", "ttl", "eval"}
STARTS_THINGS = {"ThreadPoolExecutor", "ProcessPoolExecutor", "Thread", "Timer", "Redis", "StrictRedis", "make_redis", "from_url"}


@dataclass(frozen=True)
class Module:
    name: str  # dotted
    path: Path
    tree: ast.Module

    @property
    def package(self) -> str:
        return self.name if self.path.name == "__init__.py" else self.name.rpartition(".")[0]


def modules() -> list[Module]:
    found = []
    for package in PACKAGES:
        for path in sorted(package.rglob("*.py")):
            parts = path.relative_to(package.parent).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found.append(Module(name, path, ast.parse(path.read_text(), str(path))))
    return found


MODULES = modules()
NAMES = {m.name for m in MODULES}


def runtime_imports(module: Module) -> list[tuple[ast.stmt, str, list[str]]]:
    """Every import outside ``if TYPE_CHECKING:`` blocks: (node, absolute module, imported names)."""
    skipped: set[int] = set()
    for node in ast.walk(module.tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skipped.update(id(n) for child in node.body for n in ast.walk(child))
    found: list[tuple[ast.stmt, str, list[str]]] = []
    for node in ast.walk(module.tree):
        if id(node) in skipped:
            continue
        if isinstance(node, ast.Import):
            found.extend((node, alias.name, []) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = module.package.split(".")
                anchor = anchor[: len(anchor) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.append((node, base, [alias.name for alias in node.names]))
    return found


def ours(name: str) -> str | None:
    """The module of ours that ``name`` (a module or a name in one) is, else None."""
    while name and name not in NAMES:
        name = name.rpartition(".")[0]
    return name or None


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_no_module_is_over_the_size_limit(module):
    lines = len(module.path.read_text().splitlines())
    assert lines <= MAX_LINES, f"{module.path.relative_to(ROOT)} has {lines} lines: split it by what its parts do"


def test_only_the_files_storage_package_reaches_redis():
    offenders = []
    for module in MODULES:
        if not module.name.startswith("redfile_files.") or module.name.startswith("redfile_files.storage"):
            continue
        for statement, name, _ in runtime_imports(module):
            if name == "redis" or name.startswith("redis."):
                offenders.append(f"{module.name}:{statement.lineno} imports {name}")
        for call in ast.walk(module.tree):
            func = call.func if isinstance(call, ast.Call) else None
            if not isinstance(func, ast.Attribute):
                continue
            if func.attr in REDIS_CALLS or (func.attr in GENERIC_CALLS and "redis" in ast.unparse(func.value).lower()):
                offenders.append(f"{module.name}:{func.lineno} calls {ast.unparse(func)}")
    assert offenders == []


def test_no_module_imports_another_modules_private_names():
    offenders = []
    for module in MODULES:
        for node, name, imported in runtime_imports(module):
            target = ours(name)
            if target is None or target == module.name:
                continue
            private = [n for n in imported if n.startswith("_") and not n.startswith("__")]
            if private:
                offenders.append(f"{module.name}:{node.lineno} imports {private} from {name}")
    assert offenders == []


def test_there_are_no_import_cycles():
    graph: dict[str, set[str]] = {m.name: set() for m in MODULES}
    for module in MODULES:
        for _, name, imported in runtime_imports(module):
            for candidate in [f"{name}.{n}" for n in imported] + [name]:
                target = ours(candidate)
                if target and target != module.name and not module.name.startswith(target + "."):
                    graph[module.name].add(target)
    cycles = []
    state: dict[str, int] = {}  # 1: on the stack, 2: done
    stack: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        stack.append(name)
        for nxt in sorted(graph[name]):
            if state.get(nxt) == 1:
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)
    assert cycles == []


@pytest.mark.parametrize("module", MODULES, ids=lambda m: m.name)
def test_importing_a_module_starts_no_threads_and_opens_no_clients(module):
    made = []
    for statement in module.tree.body:
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            continue
        for node in ast.walk(statement):
            if isinstance(node, ast.Call):
                func = node.func
                called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
                if called in STARTS_THINGS:
                    made.append(f"line {node.lineno}: {called}()")
    assert made == []


def test_the_rules_see_the_code():
    """The walks above read real modules (a rule over nothing would pass whatever the code did)."""
    assert {"redfile_files.storage.keys", "redfile_files.domain", "redfile_common.app"} <= NAMES
    assert any(name == "redis" for _, name, _ in runtime_imports(next(m for m in MODULES if m.name == "redfile_files.storage")))
