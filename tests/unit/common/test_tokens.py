import time

import fakeredis
import jwt
import pytest

from redfile_common.settings import SigningKey
from redfile_common.tokens import Keyring, ServiceTokens, TokenError, TokenState, UserTokens

K1 = SigningKey("k1", b"1" * 40)
K2 = SigningKey("k2", b"2" * 40)
SVC = SigningKey("s1", b"s" * 40)


def users(*keys):
    return UserTokens(Keyring(list(keys)), issuer="redfile-auth", audience="redfile")


def mint(tokens, **kw):
    args = {"username": "alice", "role": "user", "scopes": ["files:read"], "version": "v1", "ttl": 60}
    args.update(kw)
    return tokens.mint(**args)


def test_roundtrip_carries_every_claim():
    token, _ = mint(users(K1))
    claims = users(K1).verify(token)
    assert claims.sub == "alice" and claims.typ == "access" and claims.role == "user"
    assert {"iss", "sub", "aud", "iat", "exp", "jti", "typ", "role", "scopes"} <= set(claims.raw)
    assert jwt.get_unverified_header(token)["kid"] == "k1"


def test_rotation_first_key_signs_all_verify():
    old_token, _ = mint(users(K1))
    rotated = users(K2, K1)
    assert rotated.verify(old_token).sub == "alice"
    new_token, _ = mint(rotated)
    assert jwt.get_unverified_header(new_token)["kid"] == "k2"
    with pytest.raises(TokenError) as err:
        users(K2).verify(old_token)  # K1 retired
    assert err.value.reason == "unknown_key"


def test_tampered_expired_and_wrong_audience_are_refused():
    token, _ = mint(users(K1))
    head, body, sig = token.split(".")
    tampered = f"{head}.{body}.{sig[:-2]}{'A' if sig[-2] != 'A' else 'B'}{sig[-1]}"
    with pytest.raises(TokenError):
        users(K1).verify(tampered)
    expired, _ = mint(users(K1), ttl=-30)
    with pytest.raises(TokenError) as err:
        users(K1).verify(expired)
    assert err.value.reason == "expired"
    other = UserTokens(Keyring([K1]), issuer="redfile-auth", audience="elsewhere")
    with pytest.raises(TokenError) as err:
        other.verify(token)
    assert err.value.reason == "wrong_audience"


def test_none_algorithm_is_refused():
    forged = jwt.encode({"sub": "root"}, key="", algorithm="none", headers={"kid": "k1"})
    with pytest.raises(TokenError):
        users(K1).verify(forged)


def test_service_tokens_are_for_one_target_only():
    files = ServiceTokens(Keyring([SVC]), service_name="files")
    admin = ServiceTokens(Keyring([SVC]), service_name="admin")
    token = admin.mint("files")
    assert files.verify(token).sub == "admin"
    with pytest.raises(TokenError) as err:
        admin.verify(token)
    assert err.value.reason == "wrong_audience"


def test_service_and_user_tokens_do_not_cross():
    svc = ServiceTokens(Keyring([SVC]), service_name="admin")
    with pytest.raises(TokenError):
        users(K1).verify(svc.mint("files"))
    user_token, _ = mint(users(K1))
    with pytest.raises(TokenError):
        ServiceTokens(Keyring([SVC]), service_name="files").verify(user_token)


def test_service_token_lifetime_is_bounded():
    with pytest.raises(ValueError):
        ServiceTokens(Keyring([SVC]), service_name="x", ttl=61)
    now = int(time.time())
    long_lived = Keyring([SVC]).sign(
        {"iss": "redfile-admin", "sub": "admin", "aud": "redfile-files", "iat": now, "exp": now + 3600, "jti": "j", "typ": "service"}
    )
    with pytest.raises(TokenError) as err:
        ServiceTokens(Keyring([SVC]), service_name="files").verify(long_lived)
    assert err.value.reason == "lifetime_too_long"


def test_token_state_revokes_on_version_change_and_deny():
    r = fakeredis.FakeRedis()
    state = TokenState(r)
    version = state.bump("alice")
    token, claims = mint(users(K1), version=version)
    state.check(users(K1).verify(token))
    state.bump("alice")
    with pytest.raises(TokenError):
        state.check(claims)
    current = state.current("alice")
    _, claims = mint(users(K1), version=current)
    state.check(claims)
    state.deny(claims)
    with pytest.raises(TokenError):
        state.check(claims)
    state.forget("alice")
    _, claims = mint(users(K1), version=version)
    with pytest.raises(TokenError):
        state.check(claims)


def test_reads_sent_with_the_check_come_back_only_when_it_passes():
    r = fakeredis.FakeRedis()
    r.hset("files:{f}:meta", "name", "a.txt")
    state = TokenState(r)
    _, claims = mint(users(K1), version=state.bump("alice"))
    queued = []

    def reads(pipe):
        queued.append(pipe)
        pipe.hgetall("files:{f}:meta")
        pipe.get("missing")

    assert state.check(claims, reads) == [{b"name": b"a.txt"}, None] and len(queued) == 1
    assert state.check(claims) is None
    state.deny(claims)
    with pytest.raises(TokenError):  # revoked: the replies are never handed out
        state.check(claims, reads)
    _, claims = mint(users(K1), version="stale")
    with pytest.raises(TokenError):
        state.check(claims, reads)


def test_a_remembered_token_still_expires_and_only_its_exact_string_is_remembered(monkeypatch):
    import redfile_common.tokens as tokens_module

    verifier = users(K1)
    token, _ = mint(verifier, ttl=10)
    assert verifier.verify(token).sub == "alice"
    assert verifier.verify(token).sub == "alice"  # remembered: no second decode
    calls: list[int] = []
    real = Keyring._decode

    def counted(self, *a, **kw):
        calls.append(1)
        return real(self, *a, **kw)

    monkeypatch.setattr(Keyring, "_decode", counted)
    verifier.verify(token)
    assert calls == []
    tampered = token[:-2] + ("A" if token[-2] != "A" else "B") + token[-1]
    with pytest.raises(TokenError):
        verifier.verify(tampered)
    assert calls == [1]  # another string is decoded (and refused), never matched to the remembered one
    now = time.time()
    monkeypatch.setattr(tokens_module.time, "time", lambda: now + 10 + tokens_module.LEEWAY_SECONDS + 1)
    with pytest.raises(TokenError) as err:
        verifier.verify(token)
    assert err.value.reason == "expired"
    assert not verifier.keyring._verified  # forgotten once expired (PyJWT, reading the real clock, would decide next time)


def test_the_remembered_tokens_are_bounded(monkeypatch):
    monkeypatch.setattr(Keyring, "VERIFIED_CACHE", 3)
    verifier = users(K1)
    for _ in range(10):
        token, _ = mint(verifier)
        verifier.verify(token)
    assert len(verifier.keyring._verified) == 3


def test_a_token_is_remembered_per_audience_and_issuer():
    token, _ = mint(users(K1))
    ring = Keyring([K1])
    assert ring.verify(token, audience="redfile", issuer="redfile-auth")["sub"] == "alice"
    with pytest.raises(TokenError) as err:
        ring.verify(token, audience="redfile-files", issuer="redfile-auth")
    assert err.value.reason == "wrong_audience"
