"""Chunks spread over a cluster's slots, and no script touches a key it was not given (Redis Cluster's rules)."""

from __future__ import annotations

import random
import re
from pathlib import Path

from redis.cluster import key_slot

from redfile_files.checksums import part_of
from redfile_files.settings import DEFAULT_CHUNK_BYTES
from redfile_files.storage import keys

LUA = Path(__file__).resolve().parents[3] / "services" / "files" / "src" / "redfile_files" / "storage" / "lua"
GIB = 1 << 30
# the slot ranges `redis-cli --cluster create` gives three primaries
PRIMARIES = ((0, 5460), (5461, 10922), (10923, 16383))


def test_a_1_gib_file_puts_a_third_of_its_bytes_on_each_of_three_primaries():
    rng = random.Random(19)
    for _ in range(200):
        file_id = f"{rng.getrandbits(128):032x}"
        shares = keys.chunk_spread(file_id, GIB, DEFAULT_CHUNK_BYTES, PRIMARIES)
        assert all(abs(share - 1 / 3) <= 0.10 for share in shares), (file_id, shares)


def test_a_chunk_key_names_its_index_and_content_and_parses_back():
    file_id, data = "cd" * 16, b"some bytes"
    key = keys.chunk(file_id, 7, part_of(data).encode())
    family = keys.classify(key)
    assert family is not None
    assert (family.space, family.tag, family.part, family.arg, family.version) == (
        "chunk",
        file_id,
        "chunk",
        "7",
        part_of(data).blake3[:16],
    )
    assert key_slot(key.encode()) != key_slot(keys.meta(file_id).encode())
    assert keys.chunk(file_id, 7, part_of(data).encode(), keys.LEGACY) == f"files:{{{file_id}}}:c:7"
    assert (
        key_slot(keys.incoming(file_id, 7).encode())
        == key_slot(key.encode())
        == key_slot(keys.tus_staging(file_id, 7, "ab" * 8, 0).encode())
    )


# -- every key a script touches is one of its KEYS ----------------------------------------------------------
CALL = re.compile(r"redis\.call\(")
# where the keys of a command are among its arguments: None, every argument
KEY_ARGS: dict[str, tuple[int, ...] | None] = {"TIME": (), "UNLINK": None, "DEL": None, "EXISTS": None, "RENAME": (0, 1), "COPY": (0, 1)}
# scripts that touch a key they build, each with why it is still in the slot of its KEYS: none
EXCEPTIONS: dict[str, str] = {}
KEY_EXPR = re.compile(r"KEYS\[[\w +]+\]")  # KEYS[2], KEYS[i + 2]


def _calls(text: str, name: str) -> list[list[str]]:
    """The arguments of every ``name(...)`` call, split at top-level commas."""
    out = []
    for found in re.finditer(rf"(?<![\w.]){re.escape(name)}\(", text):
        depth, start, args = 1, found.end(), []
        i = start
        while depth:
            ch = text[i]
            if ch == "(" or ch == "{":
                depth += 1
            elif ch == ")" or ch == "}":
                depth -= 1
            elif ch == "," and depth == 1:
                args.append(text[start:i].strip())
                start = i + 1
            i += 1
        args.append(text[start : i - 1].strip())
        out.append([a for a in args if a])
    return out


def _key_names(text: str) -> set[str]:
    """Locals bound to KEYS entries (``local a, b = KEYS[1], KEYS[2]``, ``local k = KEYS[i + 2]``)."""
    names = set()
    for left, right in re.findall(r"local\s+([\w\s,]+?)\s*=\s*([^\n]+)", text):
        for name, value in zip((n.strip() for n in left.split(",")), (v.strip() for v in right.split(","))):
            if KEY_EXPR.fullmatch(value):
                names.add(name)
    return names


def test_every_key_a_script_touches_comes_from_its_keys():
    sources = {p.name: p.read_text() for p in sorted(LUA.glob("*.lua"))}
    preludes = {p.name: p.read_text() for p in sorted((LUA / "prelude").glob("*.lua"))}
    functions = {
        m[0]: [a.strip() for a in m[1].split(",")]
        for text in preludes.values()
        for m in re.findall(r"local function (\w+)\(([^)]*)\)", text)
    }
    # a prelude's parameter is a key when every script that calls the function passes it a key there
    key_params: dict[str, set[str]] = {}
    for fn, params in functions.items():
        ok = set(params)
        for text in sources.values():
            names = _key_names(text)
            for args in _calls(text, fn):
                ok -= {p for p, a in zip(params, args) if not (KEY_EXPR.fullmatch(a) or a in names)}
        key_params[fn] = ok
    wrong = []
    for name, text in {**sources, **preludes}.items():
        if name in EXCEPTIONS:
            continue
        allowed = _key_names(text)
        for fn in functions:
            if re.search(rf"local function {fn}\(", text):
                allowed |= key_params[fn]
        for args in _calls(text, "redis.call"):
            command = args[0].strip("'\"").upper()
            positions = KEY_ARGS.get(command, (0,))
            rest = args[1:]
            for i, arg in enumerate(rest):
                if (positions is None or i in positions) and not (KEY_EXPR.fullmatch(arg) or arg in allowed):
                    wrong.append(f"{name}: {command} {arg}")
    assert wrong == []
