"""users.acl and render-acl.sh, without a server: what the file grants and how it is rendered."""

from __future__ import annotations

import hashlib
import re
import subprocess

import pytest

from .conftest import REDIS_FILES, ROOT, SERVICES, acl_users, allowed_commands

LUA_CALL = re.compile(r"redis\.call\(\s*'([A-Za-z]+)'")


def render(tmp_path, passwords: dict[str, bytes]) -> subprocess.CompletedProcess:
    pw = tmp_path / "pw"
    pw.mkdir(exist_ok=True)
    for user, password in passwords.items():
        (pw / user).write_bytes(password)
    return subprocess.run(
        ["sh", str(REDIS_FILES / "render-acl.sh"), str(REDIS_FILES / "users.acl"), str(pw), str(tmp_path / "out.acl")],
        capture_output=True,
        text=True,
        timeout=30,
    )


ALL = {u: f"pw-of-{u}".encode() for u in ("redfile-auth", "redfile-files", "redfile-admin", "redfile-probe", "redfile-ops")}


def test_the_default_user_is_off_and_without_rights():
    rules = acl_users()["default"]
    assert rules[0] == "off"
    assert {"resetpass", "resetkeys", "-@all"} <= set(rules)
    assert not any(r.startswith(("+", "~", "%", ">", "#")) or r == "nopass" for r in rules)


@pytest.mark.parametrize("service", SERVICES)
def test_each_service_has_its_own_enabled_user_with_an_allow_list(service):
    rules = acl_users()[f"redfile-{service}"]
    assert rules[0] == "on"
    assert "-@all" in rules  # an allow-list, not a deny-list
    assert "nopass" not in rules and not any(r.startswith((">", "#")) for r in rules)  # passwords come from Secrets
    assert not any(r.startswith("+@") for r in rules)  # no whole categories
    assert not any(r in ("~*", "%R~*", "allkeys", "allcommands") for r in rules)


def test_key_spaces_follow_the_architecture():
    users = acl_users()
    keys = {u: {r for r in rules if "~" in r} for u, rules in users.items()}
    assert keys["redfile-auth"] == {"~auth:*", "~rf:tokstate:*", "~rf:tokdeny:*", "%W~rf:audit"}
    assert keys["redfile-files"] == {"~files:*", "%R~rf:tokstate:*", "%R~rf:tokdeny:*", "%W~rf:audit"}
    assert keys["redfile-admin"] == {"%R~rf:tokstate:*", "%R~rf:tokdeny:*", "%RW~rf:audit"}
    assert keys["redfile-probe"] == set()


@pytest.mark.parametrize("service", ["auth", "files"])
def test_every_command_the_lua_scripts_call_is_allowed(service):
    # Scripts run with the caller's rights: a command a script needs but the user lacks
    # fails only at run time.  (tests/integration/deploy runs the real apps as well.)
    # the service's scripts, and the shared library's (they run with the service's rights too)
    roots = (ROOT / "services" / service / "src", ROOT / "libs" / "common" / "src")
    source = "\n".join(p.read_text() for root in roots for pattern in ("*.py", "*.lua") for p in root.rglob(pattern))
    called = {c.lower() for c in LUA_CALL.findall(source)}
    assert called, "no Lua found: has the storage moved?"
    allowed = allowed_commands(acl_users()[f"redfile-{service}"])
    assert {"evalsha", "eval", "script|load"} <= allowed
    assert called <= allowed, f"add to users.acl: {sorted(called - allowed)}"


def test_rendering_hashes_each_password_and_drops_comments(tmp_path):
    done = render(tmp_path, ALL)
    assert done.returncode == 0, done.stderr
    text = (tmp_path / "out.acl").read_text()
    assert "#" not in text.replace("#" + hashlib.sha256(b"x").hexdigest(), "").split("user")[0]
    lines = text.splitlines()
    assert all(line.startswith("user ") for line in lines)
    assert len(lines) == len(acl_users())
    for user, password in ALL.items():
        assert f"user {user} on #{hashlib.sha256(password).hexdigest()} " in text
        assert password.decode() not in text
    assert "~auth:*" in text  # no globbing of rules
    assert oct((tmp_path / "out.acl").stat().st_mode & 0o777) == "0o600"


def test_rendering_refuses_a_missing_password(tmp_path):
    done = render(tmp_path, {u: p for u, p in ALL.items() if u != "redfile-files"})
    assert done.returncode == 1
    assert "no password for Redis user 'redfile-files'" in done.stderr
    assert not (tmp_path / "out.acl").exists()


def test_rendering_refuses_a_password_with_a_newline(tmp_path):
    done = render(tmp_path, ALL | {"redfile-probe": b"secret\n"})
    assert done.returncode == 1
    assert "newline" in done.stderr


def test_k8s_base_carries_the_same_acl_file():
    import yaml

    docs = [d for d in yaml.safe_load_all((ROOT / "k8s" / "base" / "redfile.yaml").read_text()) if d]
    (config,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "redfile-redis"]
    assert config["data"]["users.acl"].strip() == (REDIS_FILES / "users.acl").read_text().strip(), (
        "k8s/base is stale: run scripts/render-k8s.sh"
    )
