"""Failure limits that a stranger cannot turn against the owner (issue 18, finding 3).

A stranger's wrong passwords lock the stranger out: their own (username, address) or (link,
address) pair, and their address.  The username or link itself is never locked: past its
ceiling, the addresses that have failed on it wait a growing delay between checks, and an
address that has not failed is admitted at once -- so the owner (or a link's recipient)
still gets in with the right password while the account is under attack.

Real apps on the private Redis; addresses from ``X-Forwarded-For`` behind one trusted proxy,
as in production behind the Ingress.
"""

from __future__ import annotations

import hashlib
import itertools
import time

import pytest

from redfile_dev.testing import auth_header, make_settings, settings_overrides, user_token

ADMIN_PASSWORD = "admin-password-1"
CHEAP_ARGON2 = {"argon2_memory_kib": 1024, "argon2_time_cost": 1, "argon2_parallelism": 1}
PER_CLIENT = 3
CEILING = 6
WINDOW = 120


def _addresses():
    return (f"198.51.100.{i}" for i in itertools.count(1))


# -- logins --------------------------------------------------------------------------------------------
@pytest.fixture
def make_auth(redis_url):
    def make(**extra):
        options = {
            "admin_users": "admin",
            "admin_password": ADMIN_PASSWORD,
            "trusted_proxy_hops": 1,
            "login_max_failures_per_client": PER_CLIENT,
            "login_max_failures_per_user": CEILING,
            "login_max_failures_per_ip": 50,
            "login_failure_window": WINDOW,
            **CHEAP_ARGON2,
        }
        return create_auth(redis_url, **(options | extra)).test_client()

    return make


def create_auth(redis_url, **options):
    from redfile_auth import create_app

    return create_app(**settings_overrides(redis_url, **options))


def _login(client, password: str, addr: str, username: str = "admin"):
    return client.post("/auth/login", json={"username": username, "password": password}, headers={"X-Forwarded-For": addr})


def _retry_after(resp) -> int:
    assert resp.status_code == 429, (resp.status_code, resp.json)
    assert resp.json["error"]["code"] == "too_many_requests"
    return int(resp.headers["Retry-After"])


def test_with_the_default_limits_ten_wrong_passwords_do_not_lock_the_admin_out(redis_url):
    """The probe's finding as it was seen: 10 wrong passwords, then the admin's right one got 429 for 15 minutes."""
    auth = create_auth(redis_url, admin_users="admin", admin_password=ADMIN_PASSWORD, trusted_proxy_hops=1, **CHEAP_ARGON2).test_client()
    for i in range(10):
        assert _login(auth, f"guess-{i}", "203.0.113.66").status_code in (401, 429)
    assert _login(auth, ADMIN_PASSWORD, "192.0.2.10").status_code == 200


def test_a_stranger_guessing_the_admins_password_does_not_lock_the_admin_out(make_auth):
    auth = make_auth()
    stranger = "203.0.113.66"
    answers = [_login(auth, f"guess-{i}", stranger).status_code for i in range(10)]
    assert answers == [401] * PER_CLIENT + [429] * (10 - PER_CLIENT)  # the stranger is stopped ...
    assert 1 <= _retry_after(_login(auth, ADMIN_PASSWORD, stranger)) <= WINDOW  # ... even with the right password
    assert _login(auth, ADMIN_PASSWORD, "192.0.2.10").status_code == 200  # the admin, elsewhere, is not


def test_guesses_from_many_addresses_slow_the_ones_that_failed_and_never_the_others(make_auth):
    auth = make_auth(login_slowdown_max=2)
    addr = _addresses()
    failed = [next(addr) for _ in range(CEILING + 4)]
    for a in failed:  # a distributed guesser: one wrong password per address, past the username's ceiling
        assert _login(auth, "wrong-guess", a).status_code == 401
    # past the ceiling an address that has failed waits (the right password too) ...
    assert 1 <= _retry_after(_login(auth, ADMIN_PASSWORD, failed[-1])) <= 2
    # ... while an address that has not failed gets in at once, again and again
    for _ in range(3):
        assert _login(auth, ADMIN_PASSWORD, next(addr)).status_code == 200
    # the wait ends (it is a delay, not a lockout): the owner who mistyped once gets in
    deadline = time.monotonic() + 10
    while (resp := _login(auth, ADMIN_PASSWORD, failed[-1])).status_code == 429:
        assert time.monotonic() < deadline, "the slowed address never got in"
        time.sleep(0.25)
    assert resp.status_code == 200


def test_brute_force_stays_bounded_per_address_and_per_pair(make_auth):
    auth = make_auth(login_max_failures_per_ip=5)
    guesser = "203.0.113.77"
    assert [_login(auth, "wrong", guesser, f"nobody{i}").status_code for i in range(7)] == [401] * 5 + [429] * 2
    assert _retry_after(_login(auth, ADMIN_PASSWORD, guesser)) >= 1  # the address is done, for every name
    assert _login(auth, ADMIN_PASSWORD, "203.0.113.78").status_code == 200


# -- share-link passwords ----------------------------------------------------------------------------
@pytest.fixture
def files(redis_url):
    from redfile_files import create_app

    app = create_app(
        **settings_overrides(
            redis_url,
            sweep_interval=0,
            trusted_proxy_hops=1,
            share_password_max_failures=PER_CLIENT,
            share_password_max_failures_per_link=CEILING,
            share_password_window=WINDOW,
        )
    )
    return app


@pytest.fixture
def guarded_link(files, redis_client, redis_url):
    from redfile_files.settings import FilesSettings

    client = files.test_client()
    alice = auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice"))
    up = client.post("/texts", headers=alice, json={"name": "note.txt", "content": "the secret text"})
    assert up.status_code == 201, up.json
    link = client.post(f"/files/{up.json['id']}/shares", headers=alice, json={"password": "the-link-password"})
    assert link.status_code == 201, link.json
    return link.json["token"]


def _open(client, token: str, password: str, addr: str):
    return client.get(f"/s/{token}", headers={"X-Share-Password": password, "X-Forwarded-For": addr})


def test_with_the_default_limits_five_wrong_guesses_do_not_lock_out_a_links_recipients(redis_url, redis_client):
    """The probe's finding as it was seen: five wrong guesses, then every recipient got 429."""
    from redfile_files import create_app
    from redfile_files.settings import FilesSettings

    client = create_app(**settings_overrides(redis_url, sweep_interval=0, trusted_proxy_hops=1)).test_client()
    alice = auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice"))
    up = client.post("/texts", headers=alice, json={"name": "note.txt", "content": "the secret text"})
    token = client.post(f"/files/{up.json['id']}/shares", headers=alice, json={"password": "the-link-password"}).json["token"]
    for i in range(5):
        assert _open(client, token, f"guess-{i}", "203.0.113.66").status_code == 401
    assert _open(client, token, "the-link-password", "192.0.2.10").status_code == 200


def test_wrong_guesses_on_a_share_link_do_not_lock_out_its_recipients(files, guarded_link, redis_client):
    client = files.test_client()
    stranger = "203.0.113.66"
    answers = [_open(client, guarded_link, f"guess-{i}", stranger).status_code for i in range(8)]
    assert answers == [401] * PER_CLIENT + [429] * (8 - PER_CLIENT)
    assert 1 <= _retry_after(_open(client, guarded_link, "the-link-password", stranger)) <= WINDOW
    resp = _open(client, guarded_link, "the-link-password", "192.0.2.10")  # a recipient, elsewhere
    assert resp.status_code == 200 and resp.data == b"the secret text"
    digest = hashlib.sha256(guarded_link.encode()).hexdigest()
    assert int(redis_client.get(f"files:{{l:{digest}}}:pwfail")) == PER_CLIENT  # every wrong guess of the link counted


def test_a_share_link_past_its_ceiling_slows_the_addresses_that_failed_only(files, guarded_link):
    client = files.test_client()
    addr = _addresses()
    failed = [next(addr) for _ in range(CEILING + 2)]
    for a in failed:
        assert _open(client, guarded_link, "wrong-guess", a).status_code == 401
    assert _retry_after(_open(client, guarded_link, "the-link-password", failed[-1])) >= 1
    for _ in range(3):
        assert _open(client, guarded_link, "the-link-password", next(addr)).status_code == 200
