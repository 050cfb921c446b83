"""The Lua loader: preludes joined onto a script's first line, so Redis's line numbers are the file's."""

from __future__ import annotations

import sys

import pytest
import redis

from redfile_common import lua_scripts as lua


@pytest.fixture
def package(tmp_path, monkeypatch):
    """An importable package ``luapkg`` with a ``lua/`` folder the test fills in."""
    root = tmp_path / "luapkg"
    (root / "lua" / "prelude").mkdir(parents=True)
    (root / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("luapkg", None)
    lua.prelude.cache_clear()
    lua.source.cache_clear()
    yield root
    lua.prelude.cache_clear()
    lua.source.cache_clear()
    sys.modules.pop("luapkg", None)


def test_a_runtime_error_names_the_line_of_the_lua_file(package, redis_client):
    (package / "lua" / "prelude" / "twice.lua").write_text(
        "-- doubles a number\n--! exports: twice\n\nlocal function twice(x)\n  return x * 2\nend\n"
    )
    (package / "lua" / "broken.lua").write_text(
        "-- a script that fails on line 5\n--! include: twice\nlocal n = twice(tonumber(ARGV[1]))\nif n > 2 then\n"
        "  return redis.call('INCR', KEYS[1])\nend\nreturn n\n"
    )
    scripts = lua.Scripts(redis_client, "luapkg")
    assert scripts["broken"](keys=["k"], args=[1]) == 2  # the prelude ran
    redis_client.set("k", "not a number")
    with pytest.raises(redis.exceptions.ResponseError, match=r"user_script:5\b"):
        scripts["broken"](keys=["k"], args=[2])


def test_a_prelude_comes_from_redfile_common_when_the_package_has_none(package, redis_client):
    (package / "lua" / "clock.lua").write_text("--! include: time\nreturn {now > 0 and 1 or 0, now_us > 0 and 1 or 0}\n")
    assert lua.Scripts(redis_client, "luapkg")["clock"](keys=[], args=[]) == [1, 1]


def test_a_prelude_with_a_comment_after_code_is_refused(package):
    (package / "lua" / "prelude" / "bad.lua").write_text("local x = 1 -- a comment here would swallow the script's first line\n")
    (package / "lua" / "uses_bad.lua").write_text("--! include: bad\nreturn x\n")
    with pytest.raises(lua.LuaSourceError, match="comment after code"):
        lua.source("luapkg", "uses_bad")


def test_a_missing_script_or_prelude_is_named(package):
    with pytest.raises(lua.LuaSourceError, match="no Lua script 'absent'"):
        lua.source("luapkg", "absent")
    (package / "lua" / "needs.lua").write_text("--! include: nowhere\nreturn 1\n")
    with pytest.raises(lua.LuaSourceError, match="no Lua prelude 'nowhere'"):
        lua.source("luapkg", "needs")
