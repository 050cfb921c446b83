from __future__ import annotations

import pytest

from redfile_auth.settings import AuthSettings
from redfile_common.settings import SettingsError, load_settings
from redfile_dev.testing import settings_overrides


def make(**extra) -> AuthSettings:
    return load_settings(AuthSettings, settings_overrides("redis://127.0.0.1:1/0", **extra))


def test_defaults():
    s = make()
    assert s.service_name == "auth"
    assert s.admin_password is None
    assert (s.access_token_ttl, s.refresh_token_ttl) == (900, 30 * 24 * 3600)
    assert (s.login_max_failures_per_client, s.login_max_failures_per_user, s.login_max_failures_per_ip) == (5, 20, 50)
    assert (s.login_failure_window, s.login_slowdown_max) == (900, 60)
    assert (s.argon2_time_cost, s.argon2_memory_kib, s.argon2_parallelism) == (3, 65536, 4)
    assert s.admin_users == ["admin"]


def test_from_environment(monkeypatch):
    monkeypatch.setenv("ADMIN_USERS", "root, boss")
    monkeypatch.setenv("ADMIN_PASSWORD", "a-long-enough-password")
    monkeypatch.setenv("ACCESS_TOKEN_TTL", "300")
    monkeypatch.setenv("LOGIN_MAX_FAILURES_PER_IP", "7")
    monkeypatch.setenv("ARGON2_MEMORY_KIB", "2048")
    s = load_settings(AuthSettings, dict(settings_overrides("redis://x:1/0").items()))
    assert s.admin_users == ["root", "boss"]
    assert s.admin_password == "a-long-enough-password"
    assert (s.access_token_ttl, s.login_max_failures_per_ip, s.argon2_memory_kib) == (300, 7, 2048)


def test_admin_password_never_in_repr():
    s = make(admin_password="a-long-enough-password")
    assert "a-long-enough-password" not in repr(s)


def test_empty_admin_password_is_unset():
    assert make(admin_password="").admin_password is None


@pytest.mark.parametrize(
    "extra",
    [
        {"admin_password": "tiny7ch"},
        {"argon2_memory_kib": 16, "argon2_parallelism": 4},
        {"access_token_ttl": 3600, "refresh_token_ttl": 3600},
        {"login_max_failures_per_user": 0},
        {"argon2_time_cost": 0},
    ],
)
def test_invalid_settings_refused(extra):
    with pytest.raises(SettingsError) as err:
        make(**extra)
    assert "tiny7ch" not in str(err.value)  # names variables, never values
