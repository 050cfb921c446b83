"""Encryption at rest: sealed chunks, per-file keys wrapped by rotating master keys, tampering detected."""

import base64
import os

import pytest

from redfile_dev.testing import auth_header, user_token
from redfile_files.crypto import SEAL_OVERHEAD
from redfile_files.storage import keys

from .conftest import chunk_at

K1 = "k1:" + base64.b64encode(b"1" * 32).decode()
K2 = "k2:" + base64.b64encode(b"2" * 32).decode()
DATA = os.urandom(64 * 3 + 5)


@pytest.fixture
def sealed(make_app, settings, redis_client):
    def build(keys):
        app = make_app(encryption_keys=keys)
        return app.test_client(), auth_header(user_token(settings, redis_client, "alice"))

    return build


def upload(client, headers, data=DATA):
    up = client.post("/uploads", headers=headers, json={"name": "secret.bin", "total_size": len(data), "chunk_size": 64}).json
    for i in range(up["total_chunks"]):
        assert client.put(f"/uploads/{up['id']}/chunks/{i}", headers=headers, data=data[i * 64 : (i + 1) * 64]).status_code == 201
    meta = client.post(f"/uploads/{up['id']}/complete", headers=headers).json
    assert meta["encrypted"] is True
    return meta


def test_chunks_are_sealed_at_rest_and_read_back(sealed, redis_client):
    client, alice = sealed(K1)
    meta = upload(client, alice)
    for i in range(4):
        stored = redis_client.get(chunk_at(redis_client, meta["id"], i))
        plain = DATA[i * 64 : (i + 1) * 64]
        assert len(stored) == len(plain) + SEAL_OVERHEAD and plain not in stored
    assert redis_client.hget(keys.meta(meta["id"]), "dek").startswith(b"k1:")
    assert client.get(f"/files/{meta['id']}", headers=alice).data == DATA
    assert client.get(f"/files/{meta['id']}", headers={**alice, "Range": "bytes=60-130"}).data == DATA[60:131]
    # the seed API and texts are sealed the same way
    text = client.post("/texts", headers=alice, json={"content": "hush"}).json
    assert b"hush" not in redis_client.get(chunk_at(redis_client, text["id"], 0))
    assert client.get(f"/texts/{text['id']}", headers=alice).json["content"] == "hush"


def test_rotation_keeps_old_files_readable_without_re_encrypting(sealed, redis_client):
    client, alice = sealed(K1)
    old = upload(client, alice)
    before = redis_client.get(chunk_at(redis_client, old["id"], 0))
    client, alice = sealed(f"{K2},{K1}")  # the new key first: it wraps new files, both unwrap
    new = upload(client, alice)
    assert redis_client.hget(keys.meta(new["id"]), "dek").startswith(b"k2:")
    assert client.get(f"/files/{old['id']}", headers=alice).data == DATA
    assert client.get(f"/files/{new['id']}", headers=alice).data == DATA
    assert redis_client.get(chunk_at(redis_client, old["id"], 0)) == before
    client, alice = sealed(K2)  # k1 dropped too early: an error, never bytes
    resp = client.get(f"/files/{old['id']}", headers=alice)
    assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt"


@pytest.mark.parametrize("attack", ["flip", "swap_index", "swap_file", "truncate"])
def test_tampering_is_detected_never_served(sealed, redis_client, attack):
    client, alice = sealed(K1)
    meta = upload(client, alice)
    other = upload(client, alice)
    key = chunk_at(redis_client, meta["id"], 0)
    stored = redis_client.get(key)
    if attack == "flip":
        forged = stored[:20] + bytes([stored[20] ^ 1]) + stored[21:]
    elif attack == "swap_index":
        forged = redis_client.get(chunk_at(redis_client, meta["id"], 1))
    elif attack == "swap_file":
        forged = redis_client.get(chunk_at(redis_client, other["id"], 0))
    else:
        forged = stored[:10]
    redis_client.set(key, forged)
    resp = client.get(f"/files/{meta['id']}", headers=alice)
    assert resp.status_code == 500 and resp.json["error"]["code"] == "stored_data_corrupt"
    assert DATA[:64] not in resp.data


def test_clear_files_stay_readable_after_encryption_is_switched_on(sealed, redis_client):
    client, alice = sealed("")
    up = client.post("/uploads", headers=alice, json={"name": "c", "total_size": 3}).json
    client.put(f"/uploads/{up['id']}/chunks/0", headers=alice, data=b"abc")
    meta = client.post(f"/uploads/{up['id']}/complete", headers=alice).json
    assert meta["encrypted"] is False and redis_client.get(chunk_at(redis_client, meta["id"], 0)) == b"abc"
    client, alice = sealed(K1)
    assert client.get(f"/files/{meta['id']}", headers=alice).data == b"abc"
