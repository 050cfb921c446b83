"""Files and uploads stored before chunks spread (no ``layout`` field, chunks at ``files:{<id>}:c:<index>``) keep working."""

import pytest

from redfile_files.storage import keys

from .conftest import chunk_at

# The layout before chunks spread was only ever written on one server (its scripts touched a file's chunks
# from its slot); a cluster never holds it.
pytestmark = pytest.mark.topology("standalone", "sentinel")


def to_legacy(r, fid: str, hash_key: str, n: int) -> list[str]:
    """Rewrite an id's chunks and record as a Redfile from before wrote them; the legacy chunk keys."""
    legacy = [f"files:{{{fid}}}:c:{i}" for i in range(n)]
    for i, key in enumerate(legacy):
        r.rename(chunk_at(r, fid, i), key)
    r.hdel(hash_key, "layout")
    return legacy


def spread_keys(r, fid: str) -> list:
    return r.keys(f"files:{{{fid}.*}}:*")


def test_a_file_of_the_legacy_layout_reads_back_and_deletes_whole(api, client, alice, redis_client):
    meta = api.session(alice, b"abcdefgh", chunk=3)
    legacy = to_legacy(redis_client, meta["id"], keys.meta(meta["id"]), 3)
    assert spread_keys(redis_client, meta["id"]) == [] and redis_client.exists(*legacy) == 3
    assert client.get(f"/files/{meta['id']}", headers=alice).data == b"abcdefgh"
    assert client.get(f"/files/{meta['id']}", headers={**alice, "Range": "bytes=2-4"}).data == b"cde"
    assert client.delete(f"/files/{meta['id']}", headers=alice).status_code == 204
    assert redis_client.keys("files:{" + meta["id"] + "*") == []


def test_an_upload_of_the_legacy_layout_completed_as_it_is_reads_back_and_deletes(api, client, alice, redis_client):
    up = api.create(alice, 5, chunk_size=3).json
    assert api.put(alice, up["id"], 0, b"abc").status_code == 201 and api.put(alice, up["id"], 1, b"de").status_code == 201
    legacy = to_legacy(redis_client, up["id"], keys.upload(up["id"]), 2)
    done = client.post(f"/uploads/{up['id']}/complete", headers=alice)
    assert done.status_code == 201, done.json
    assert client.get(f"/files/{up['id']}", headers=alice).data == b"abcde"
    assert [redis_client.ttl(k) for k in legacy] == [-1, -1] and spread_keys(redis_client, up["id"]) == []
    assert client.delete(f"/files/{up['id']}", headers=alice).status_code == 204
    assert redis_client.keys("files:{" + up["id"] + "*") == []


def test_an_upload_of_the_legacy_layout_moves_to_the_spread_one_with_its_next_chunk(api, client, alice, redis_client):
    up = api.create(alice, 8, chunk_size=3).json
    assert api.put(alice, up["id"], 0, b"abc").status_code == 201
    legacy = to_legacy(redis_client, up["id"], keys.upload(up["id"]), 1)
    assert api.put(alice, up["id"], 1, b"def").status_code == 201
    # its chunks moved to their own slots at once, and it records its layout
    assert redis_client.exists(*legacy) == 0 and redis_client.hget(keys.upload(up["id"]), "layout") == keys.LAYOUT.encode()
    assert api.put(alice, up["id"], 2, b"gh").status_code == 201
    assert api.put(alice, up["id"], 1, b"def").status_code == 200  # a repeat: unchanged
    assert api.put(alice, up["id"], 1, b"DEF").status_code == 409
    assert [redis_client.get(chunk_at(redis_client, up["id"], i)) for i in range(3)] == [b"abc", b"def", b"gh"]
    done = client.post(f"/uploads/{up['id']}/complete", headers=alice)
    assert done.status_code == 201, done.json
    assert client.get(f"/files/{up['id']}", headers=alice).data == b"abcdefgh"
    assert client.delete(f"/files/{up['id']}", headers=alice).status_code == 204
    assert redis_client.keys("files:{" + up["id"] + "*") == []


def test_a_tus_upload_of_the_legacy_layout_takes_the_rest_of_its_tail(tus, alice, client, redis_client):
    url = tus.new(alice, 6)
    assert tus.patch(alice, url, 0, b"ab").status_code == 204
    upload_id = url.rsplit("/", 1)[-1]
    to_legacy(redis_client, upload_id, keys.upload(upload_id), 1)
    assert tus.patch(alice, url, 2, b"cdef").status_code == 204
    assert spread_keys(redis_client, upload_id) and not redis_client.exists(f"files:{{{upload_id}}}:c:0")
    assert client.get(f"/files/{upload_id}", headers=alice).data == b"abcdef"
