"""Password guessing against real replicas: the limits hold across processes and under concurrency.

Real gunicorn processes on one real Redis (three of auth, two of files), guessers
released together by a barrier and spread round-robin over the replicas:

* **login**: concurrent guesses at one username from one address take exactly
  ``LOGIN_MAX_FAILURES_PER_CLIENT`` password checks (counted as 401s: no more, however
  many guesses run at once), then every replica answers that address 429 with
  ``Retry-After`` -- to the right password too -- until the window ends, while the owner
  logs in from elsewhere at once.  Guesses from many addresses past the username's
  ceiling (``LOGIN_MAX_FAILURES_PER_USER``) slow the addresses that failed, never lock
  the username.  The same per address over every username (``LOGIN_MAX_FAILURES_PER_IP``,
  the address taken from ``X-Forwarded-For`` behind one trusted proxy).  Concurrent logins
  with the right password are never refused.
* **share links**: the same for a link password (``SHARE_PASSWORD_MAX_FAILURES`` per
  link and address): exactly that many 401s, then 429 for that address on every replica
  until the window ends; another address with the right password is served; another
  link is unaffected; failed guesses do not count as downloads.

Windows are a few seconds (settings) so the expiry is observed, not assumed.

The counts are exact because a password check holds a place while argon2 runs (see
``redfile_common.limiter``; ``test_login_checks_in_flight_hold_places_...`` below); a counter
read before the check and incremented after it lets simultaneous guesses past the limit.
"""

from __future__ import annotations

import hashlib
import itertools
import os
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from redfile_dev.testing import auth_header, make_settings, service_token, user_token

PER_CLIENT = 5
PER_USER = 8  # the username's ceiling: past it, addresses that failed wait
PER_IP = 7
LOGIN_WINDOW = 8
SHARE_LIMIT = 4
SHARE_WINDOW = 8
GUESSERS = 24  # concurrent guesses released at once, well above every limit
ADMIN_PASSWORD = "bootstrap-admin-password-1"
TIMEOUT = 20


def _auth_env() -> dict[str, str]:
    return {
        "ADMIN_PASSWORD": ADMIN_PASSWORD,
        # ~10 ms per check: cheap enough for a test, long enough that guesses overlap
        "ARGON2_MEMORY_KIB": "8192",
        "ARGON2_TIME_COST": "1",
        "ARGON2_PARALLELISM": "1",
        "LOGIN_MAX_FAILURES_PER_CLIENT": str(PER_CLIENT),
        "LOGIN_MAX_FAILURES_PER_USER": str(PER_USER),
        "LOGIN_SLOWDOWN_MAX": "30",
        "LOGIN_MAX_FAILURES_PER_IP": str(PER_IP),
        "LOGIN_FAILURE_WINDOW": str(LOGIN_WINDOW),
        "TRUSTED_PROXY_HOPS": "1",
    }


def _burst(jobs: list, send) -> list:
    """Run ``send(job)`` for every job at once (threads released together); the results in order."""
    barrier = threading.Barrier(len(jobs))

    def run(job):
        barrier.wait(timeout=TIMEOUT)
        return send(job)

    with ThreadPoolExecutor(len(jobs)) as pool:
        return list(pool.map(run, jobs))


def _addresses():
    return (f"198.51.100.{i}" for i in itertools.count(1))


def _login(url: str, username: str, password: str, addr: str) -> requests.Response:
    return requests.post(
        f"{url}/auth/login", json={"username": username, "password": password}, headers={"X-Forwarded-For": addr}, timeout=TIMEOUT
    )


def _retry_after(resp: requests.Response) -> int:
    assert resp.status_code == 429, (resp.status_code, resp.text)
    assert resp.json()["error"]["code"] == "too_many_requests"
    return int(resp.headers["Retry-After"])


def _wait_until(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = predicate()
        if result:
            return result
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s: {what}")


def test_login_lockout_and_backoff_hold_across_replicas(redis_url, gunicorn):
    from redfile_auth.settings import AuthSettings

    replicas = gunicorn("auth", redis_url, 3, **_auth_env())
    urls = [r.url for r in replicas]
    settings = make_settings(AuthSettings, redis_url)
    internal = auth_header(service_token(settings, "admin", "auth"))
    for name in ("victim", "bystander", "crowd"):
        resp = requests.post(
            f"{urls[0]}/internal/users", headers=internal, timeout=TIMEOUT, json={"username": name, "password": f"{name}-right-password"}
        )
        assert resp.status_code == 201, resp.text
    addr = _addresses()

    # 1. The right password, more logins at once from one address than any limit: never refused.
    office = next(addr)
    crowd = _burst(
        [urls[i % len(urls)] for i in range(3 * PER_USER)], lambda url: _login(url, "crowd", "crowd-right-password", office).status_code
    )
    assert crowd == [200] * (3 * PER_USER)

    # 2. Concurrent guesses at one username from one address, over every replica:
    #    exactly PER_CLIENT of them reach the password check, every other one is a 429.
    stranger = next(addr)
    guesses = [(urls[i % len(urls)], f"guess-{i}") for i in range(GUESSERS)]
    answers = _burst(guesses, lambda job: _login(job[0], "victim", job[1], stranger))
    codes = Counter(r.status_code for r in answers)
    assert codes == {401: PER_CLIENT, 429: GUESSERS - PER_CLIENT}, codes
    assert all(r.json()["error"]["code"] == "invalid_credentials" for r in answers if r.status_code == 401)
    assert all(1 <= _retry_after(r) <= LOGIN_WINDOW for r in answers if r.status_code == 429)

    # 3. That address is locked on every replica, the right password included (it is not even checked) ...
    locked_at = time.monotonic()
    for url in urls:
        assert 1 <= _retry_after(_login(url, "victim", "victim-right-password", stranger)) <= LOGIN_WINDOW
    # ... while the victim logs in from elsewhere, and another user logs in (and fails) as usual, on every replica.
    for url in urls:
        assert _login(url, "victim", "victim-right-password", next(addr)).status_code == 200
        assert _login(url, "bystander", "bystander-right-password", next(addr)).status_code == 200
    assert _login(urls[1], "bystander", "wrong-password", next(addr)).status_code == 401
    assert _login(urls[2], "bystander", "bystander-right-password", next(addr)).status_code == 200

    # 3b. Concurrent guesses from many addresses past the victim's ceiling: each is checked once (a fresh
    #     address is never slowed), the addresses that failed then wait; fresh ones still log in.
    many = [(urls[i % len(urls)], next(addr)) for i in range(GUESSERS)]
    codes = Counter(r.status_code for r in _burst(many, lambda job: _login(job[0], "victim", "wrong-password", job[1])))
    assert codes == {401: GUESSERS}, codes
    # Which of those came past the ceiling depends on their order; one more, surely past it, must then wait.
    late = next(addr)
    assert _login(urls[0], "victim", "wrong-password", late).status_code == 401
    failed_at = time.monotonic()
    again = _login(urls[0], "victim", "victim-right-password", late)
    if time.monotonic() - failed_at < 0.9:  # within the first wait (1 s); a loaded machine may take longer to ask
        assert 1 <= _retry_after(again) <= 30
    for url in urls:
        assert _login(url, "victim", "victim-right-password", next(addr)).status_code == 200

    # 4. One address guessing many usernames is stopped after PER_IP failures, for every username
    #    from that address; other addresses go on.
    guesser = next(addr)
    spread = [(urls[i % len(urls)], guesser, f"nobody{i % 3}") for i in range(GUESSERS)]
    codes = Counter(r.status_code for r in _burst(spread, lambda job: _login(job[0], job[2], "wrong-password", job[1])))
    assert codes == {401: PER_IP, 429: GUESSERS - PER_IP}, codes
    for url in urls:
        _retry_after(_login(url, "bystander", "bystander-right-password", guesser))
    assert _login(urls[0], "bystander", "bystander-right-password", next(addr)).status_code == 200

    # 5. The lockout ends with its window, on every replica: the right password works again from that address.
    ok = _wait_until(
        lambda: _login(urls[0], "victim", "victim-right-password", stranger).status_code == 200,
        LOGIN_WINDOW + 5,
        "the address's lockout on the victim to end",
    )
    assert ok and time.monotonic() - locked_at >= 1  # it really was locked for a while
    for url in urls[1:]:
        assert _login(url, "victim", "victim-right-password", stranger).status_code == 200
    _wait_until(
        lambda: _login(urls[1], "bystander", "bystander-right-password", guesser).status_code == 200,
        LOGIN_WINDOW + 5,
        "the address's lockout to end",
    )


# -- share-link passwords ----------------------------------------------------------------------
def _download(url: str, token: str, password: str | None, addr: str = "192.0.2.1") -> requests.Response:
    headers = {"X-Share-Password": password} if password else {}
    return requests.get(f"{url}/s/{token}", headers={**headers, "X-Forwarded-For": addr}, timeout=TIMEOUT)


def test_share_password_limit_holds_across_replicas(redis_url, redis_client, gunicorn):
    from redfile_files.settings import FilesSettings

    replicas = gunicorn(
        "files", redis_url, 2, SHARE_PASSWORD_MAX_FAILURES=str(SHARE_LIMIT), SHARE_PASSWORD_WINDOW=str(SHARE_WINDOW), TRUSTED_PROXY_HOPS="1"
    )
    urls = [r.url for r in replicas]
    alice = auth_header(user_token(make_settings(FilesSettings, redis_url), redis_client, "alice"))
    data = os.urandom(3000)
    up = requests.post(f"{urls[0]}/files", headers=alice, files={"file": ("guarded.bin", data)}, timeout=TIMEOUT)
    assert up.status_code == 201, up.text
    file_id = up.json()["id"]

    def link(password: str) -> dict:
        resp = requests.post(f"{urls[1]}/files/{file_id}/shares", headers=alice, json={"password": password}, timeout=TIMEOUT)
        assert resp.status_code == 201, resp.text
        return resp.json()

    target, other = link("the-right-link-password"), link("another-link-password")

    # The right password, many at once over every replica: all served, none refused.
    crowd = _burst(
        [urls[i % len(urls)] for i in range(3 * SHARE_LIMIT)], lambda url: _download(url, target["token"], "the-right-link-password")
    )
    assert [r.status_code for r in crowd] == [200] * len(crowd) and all(r.content == data for r in crowd)

    # Concurrent wrong guesses from one address over every replica: exactly SHARE_LIMIT checked (401), the rest 429.
    stranger = "203.0.113.66"
    answers = _burst(
        [(urls[i % len(urls)], f"guess-{i}") for i in range(GUESSERS)], lambda job: _download(job[0], target["token"], job[1], stranger)
    )
    codes = Counter(r.status_code for r in answers)
    assert codes == {401: SHARE_LIMIT, 429: GUESSERS - SHARE_LIMIT}, codes
    assert all(r.json()["error"]["code"] == "share_password_required" for r in answers if r.status_code == 401)
    for r in answers:
        if r.status_code == 429:
            assert 1 <= _retry_after(r) <= SHARE_WINDOW

    # That address is locked on every replica, the right password included; the recipients (other addresses)
    # are not, nor is the other link of the same file.
    for url in urls:
        _retry_after(_download(url, target["token"], "the-right-link-password", stranger))
        assert _download(url, target["token"], "the-right-link-password").content == data
        assert _download(url, other["token"], "another-link-password", stranger).content == data
    assert _download(urls[0], other["token"], "wrong").status_code == 401
    digest = hashlib.sha256(target["token"].encode()).hexdigest()
    assert int(redis_client.get(f"files:{{l:{digest}}}:pwfail")) == SHARE_LIMIT

    # Neither the guesses nor the refusals counted as downloads.
    shares = requests.get(f"{urls[-1]}/shares", headers=alice, timeout=TIMEOUT).json()["items"]
    assert {s["id"]: s["downloads"] for s in shares}[target["id"]] == len(crowd) + len(urls)

    # The window ends: the right password opens the link again, on every replica.
    _wait_until(
        lambda: _download(urls[0], target["token"], "the-right-link-password", stranger).status_code == 200,
        SHARE_WINDOW + 5,
        "the address's lockout to end",
    )
    for url in urls[1:]:
        resp = _download(url, target["token"], "the-right-link-password", stranger)
        assert resp.status_code == 200 and resp.content == data


# -- the limiter's places, in process (real Redis) ---------------------------------------------------
def test_login_checks_in_flight_hold_places_that_free_themselves(redis_client):
    """What keeps the count exact: a check holds a place until it ends, and a check that died frees its place."""
    from redfile_auth.sessions.limits import LoginLimits
    from redfile_common.limiter import FailureLimiter, Refused

    limits = LoginLimits(FailureLimiter(redis_client, window=60, hold=1, wait=0.3), per_client=2, per_user=100, per_ip=100)
    addr = "192.0.2.1"
    first, second = limits.begin("dana", addr), limits.begin("dana", addr)
    with pytest.raises(Refused) as busy:  # two checks in flight: no third one, though nothing has failed yet
        limits.begin("dana", addr)
    assert busy.value.status == 429 and busy.value.headers["Retry-After"] == "1"
    assert limits.failed(limits.begin("dana", "192.0.2.2")) == []  # another address has places of its own
    limits.succeeded(first)  # a right password gives its place back ...
    third = limits.begin("dana", addr)
    assert limits.failed(third) == []  # ... a wrong one keeps it, as a failure
    assert int(redis_client.get(f"auth:ratelimit:pair:{{dana:{addr}}}")) == 1
    assert int(redis_client.get("auth:ratelimit:user:{dana}")) == 2
    # `second` never ends (its worker died): its place frees itself after `hold`
    _wait_until(lambda: _admitted(limits, "dana", addr), 5, "the dead check's place to free itself")
    with pytest.raises(Refused) as locked:  # two failures now: locked for the window, not busy
        limits.begin("dana", addr)
    assert locked.value.locked == ("client",) and 1 < int(locked.value.headers["Retry-After"]) <= 60
    limits.abandon(second)  # harmless after the place freed itself
    assert limits.begin("erin", addr)  # another username is not concerned
    assert limits.begin("dana", "192.0.2.3")  # nor another address


def _admitted(limits, username: str, addr: str) -> bool:
    from redfile_common.limiter import Refused

    try:
        attempt = limits.begin(username, addr)
    except Refused:
        return False
    limits.failed(attempt)
    return True
