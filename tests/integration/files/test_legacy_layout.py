"""Files and uploads stored before chunks spread (no ``layout`` field, chunks at ``files:{<id>}:c:<index>``) keep working."""

from redfile_files.storage import keys

from .conftest import chunk_at


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


def test_an_upload_of_the_legacy_layout_takes_its_next_chunks_in_its_slot_and_completes(api, client, alice, redis_client):
    up = api.create(alice, 8, chunk_size=3).json
    assert api.put(alice, up["id"], 0, b"abc").status_code in (200, 201)
    to_legacy(redis_client, up["id"], keys.upload(up["id"]), 1)
    assert api.put(alice, up["id"], 1, b"def").status_code in (200, 201)
    assert api.put(alice, up["id"], 2, b"gh").status_code in (200, 201)
    assert api.put(alice, up["id"], 1, b"def").status_code in (200, 201)  # a repeat: unchanged
    assert api.put(alice, up["id"], 1, b"DEF").status_code == 409
    assert spread_keys(redis_client, up["id"]) == []
    assert [redis_client.get(f"files:{{{up['id']}}}:c:{i}") for i in range(3)] == [b"abc", b"def", b"gh"]
    done = client.post(f"/uploads/{up['id']}/complete", headers=alice)
    assert done.status_code in (200, 201), done.json
    assert client.get(f"/files/{up['id']}", headers=alice).data == b"abcdefgh"
    assert [redis_client.ttl(f"files:{{{up['id']}}}:c:{i}") for i in range(3)] == [-1, -1, -1]
    assert client.delete(f"/files/{up['id']}", headers=alice).status_code == 204
    assert redis_client.keys("files:{" + up["id"] + "*") == []
