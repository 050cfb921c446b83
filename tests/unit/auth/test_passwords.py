from __future__ import annotations

import statistics
import time

from redfile_auth.passwords import Passwords


class CountingHasher:
    """Wraps a PasswordHasher and counts verifications (a real hasher underneath, not a mock)."""

    def __init__(self, inner):
        self.inner = inner
        self.verified: list[str] = []

    def verify(self, stored_hash, password):
        self.verified.append(stored_hash)
        return self.inner.verify(stored_hash, password)

    def __getattr__(self, name):
        return getattr(self.inner, name)


def test_hash_is_argon2id_with_configured_parameters(passwords):
    h = passwords.hash("s3cret-password")
    assert h.startswith("$argon2id$")
    assert "m=1024,t=1,p=1" in h
    assert "s3cret-password" not in h
    assert passwords.hash("s3cret-password") != h  # salted


def test_verify_right_and_wrong_password(passwords):
    h = passwords.hash("s3cret-password")
    assert passwords.verify(h, "s3cret-password").ok
    assert not passwords.verify(h, "s3cret-passwore").ok
    assert not passwords.verify(h, "").ok


def test_unknown_user_verifies_against_a_dummy_hash(passwords):
    counting = CountingHasher(passwords.hasher)
    passwords.hasher = counting
    try:
        verdict = passwords.verify(None, "whatever-password")
    finally:
        passwords.hasher = counting.inner
    assert not verdict.ok
    assert counting.verified == [passwords._dummy_hash]
    assert passwords._dummy_hash.startswith("$argon2id$") and "m=1024,t=1,p=1" in passwords._dummy_hash


def test_corrupt_stored_hash_fails_closed(passwords):
    assert not passwords.verify("not-a-hash", "whatever-password").ok
    assert not passwords.verify("$argon2id$v=19$m=1024,t=1,p=1$broken", "whatever-password").ok


def test_rehash_needed_when_parameters_change():
    old = Passwords(time_cost=1, memory_kib=1024, parallelism=1)
    new = Passwords(time_cost=2, memory_kib=1024, parallelism=1)
    h = old.hash("s3cret-password")
    assert not old.verify(h, "s3cret-password").needs_rehash
    verdict = new.verify(h, "s3cret-password")
    assert verdict.ok and verdict.needs_rehash
    assert not new.verify(h, "wrong-password").needs_rehash


def test_unknown_user_costs_about_as_much_as_a_wrong_password():
    # Parameters big enough that Argon2, not Python overhead, dominates; samples are
    # interleaved so that load from other processes hits both sides alike.
    pw = Passwords(time_cost=2, memory_kib=8192, parallelism=1)
    stored = pw.hash("the-real-password")

    def timed(fn) -> float:
        started = time.perf_counter()
        fn()
        return time.perf_counter() - started

    unknown, wrong, nothing = [], [], []
    for _ in range(21):
        unknown.append(timed(lambda: pw.verify(None, "a-guess-password")))
        wrong.append(timed(lambda: pw.verify(stored, "a-guess-password")))
        nothing.append(timed(lambda: None))
    ratio = statistics.median(unknown) / statistics.median(wrong)
    assert 0.5 < ratio < 2.0, (unknown, wrong)
    # And both really do Argon2 work (much more than a dict lookup).
    assert statistics.median(unknown) > 20 * statistics.median(nothing)
