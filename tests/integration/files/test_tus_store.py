"""The tus append script on its own: the offset is checked and advanced in one step, or nothing changes."""

import pytest

from redfile_common.errors import ApiError
from redfile_dev.testing import connections_in_use
from redfile_files.checksums import part_of
from redfile_files.storage import keys
from redfile_files.storage.files import FileStore
from redfile_files.storage.keys import UploadMode, new_staging_token
from redfile_files.storage.records import NewUpload, OffsetMismatch, Segment
from redfile_files.storage.staged import STAGING_TTL
from redfile_files.storage.tus import TusStore

from .conftest import chunk_at, dump

OWNER = "alice"
ID = "ab" * 16


@pytest.fixture
def store(redis_client):
    files = FileStore(redis_client, upload_ttl=600, max_file_bytes=1000)
    upload = NewUpload(owner=OWNER, mode=UploadMode.TUS, total_chunks=0, dek="", created_at="now", chunk_size=4)
    files.create_upload(ID, upload, not_after_us=2**62)
    return TusStore(redis_client, upload_ttl=600, max_file_bytes=1000)


def upload_slot(r) -> dict:
    """The upload's hash and part table, as ``dump`` shows them."""
    return {k: v for k, v in dump(r).items() if k in (keys.upload(ID).encode(), keys.parts(ID).encode())}


def seg(index: int, data: bytes) -> Segment:
    return Segment(index, part_of(data), data=data)


def append(store, expected, new_offset, segments, **kw):
    return store.append(ID, owner=OWNER, expected=expected, new_offset=new_offset, segments=segments, now_iso="now", **kw)


def test_an_append_checks_and_advances_the_offset(store, redis_client):
    append(store, 0, 6, [seg(0, b"abcd"), seg(1, b"ef")])
    assert redis_client.get(chunk_at(redis_client, ID, 1)) == b"ef"
    before = dump(redis_client)
    for stale in (0, 5, 7):
        with pytest.raises(OffsetMismatch) as caught:
            append(store, stale, stale + 2, [seg(1, b"efgh")])
        assert caught.value.offset == 6
    with pytest.raises(ApiError):
        store.append(ID, owner="bob", expected=6, new_offset=8, segments=[seg(1, b"efgh")], now_iso="now")
    assert dump(redis_client) == before
    append(store, 6, 8, [seg(1, b"efgh")])  # the tail chunk, rewritten whole
    assert redis_client.hget(keys.upload(ID), "received_bytes") == b"8"
    assert redis_client.get(chunk_at(redis_client, ID, 1)) == b"efgh"


def test_a_tail_written_again_leaves_one_version_of_its_chunk(store, redis_client):
    for end in range(1, 5):  # the tail chunk 0 grows a byte at a time: each append writes it whole, under a new key
        append(store, end - 1, end, [seg(0, b"abcd"[:end])])
    assert [k.decode() for k in redis_client.keys(f"files:{{{ID}.0}}:*")] == [chunk_at(redis_client, ID, 0)]
    assert redis_client.get(chunk_at(redis_client, ID, 0)) == b"abcd"


def test_a_length_is_set_once_and_bounds_the_offset(store, redis_client):
    append(store, 0, 0, [], length=10)
    assert redis_client.hmget(keys.upload(ID), "total_size", "total_chunks") == [b"10", b"3"]
    before = dump(redis_client)
    with pytest.raises(ApiError) as caught:
        append(store, 0, 0, [], length=11)
    assert caught.value.status == 400
    with pytest.raises(ApiError) as caught:
        append(store, 0, 12, [seg(0, b"abcd"), seg(1, b"efgh"), seg(2, b"ijkl")])
    assert caught.value.status == 413
    assert dump(redis_client) == before
    assert append(store, 0, 0, [], length=10).length_set is False  # the same length again: fine, not set again


def test_the_largest_file_bounds_a_deferred_upload(store, redis_client):
    before = dump(redis_client)
    with pytest.raises(ApiError) as caught:
        append(store, 0, 1001, [seg(0, b"a")])
    assert caught.value.status == 413
    with pytest.raises(ApiError):
        append(store, 0, 0, [], length=1001)
    assert dump(redis_client) == before


def test_staged_chunks_are_renamed_into_place_or_the_append_refuses(store, redis_client):
    token = new_staging_token()
    staging = [keys.tus_staging(ID, n, token, n) for n in range(2)]
    assert all(k.startswith(f"files:{{{ID}.{n}}}:s:") for n, k in enumerate(staging))  # each chunk's own slot
    staged_write(store, (token, 0), b"abcd").finish()
    before = upload_slot(redis_client)
    segments = [Segment(0, part_of(b"abcd"), staged_key=staging[0]), Segment(1, part_of(b"ef"), staged_key=staging[1])]
    with pytest.raises(ApiError) as caught:  # the second staged chunk is gone (expired)
        append(store, 0, 6, segments)
    assert caught.value.status == 503
    assert upload_slot(redis_client) == before  # nothing recorded (the first chunk waits, unrecorded)
    staged_write(store, (token, 1), b"ef").finish()
    append(store, 0, 6, segments)
    assert [redis_client.get(chunk_at(redis_client, ID, i)) for i in (0, 1)] == [b"abcd", b"ef"]
    assert redis_client.exists(*staging) == 0
    assert 0 < redis_client.ttl(chunk_at(redis_client, ID, 0)) <= 600


def test_a_final_upload_takes_appends_only_from_its_concatenation(store, redis_client):
    redis_client.hset(keys.upload(ID), "tus_concat", "final;/tus/x")
    with pytest.raises(ApiError) as caught:
        append(store, 0, 1, [seg(0, b"a")])
    assert caught.value.status == 403
    append(store, 0, 1, [seg(0, b"a")], allow_final=True)


def test_links_and_annotations_only_touch_keys_that_exist(store, redis_client):
    assert store.link_final(ID, "cd" * 16) is True
    assert redis_client.hget(keys.upload(ID), f"tus_final:{'cd' * 16}") == b"1"
    assert store.link_final("ef" * 16, "cd" * 16) is False
    assert store.annotate_file(ID, {"tus_concat": "partial"}) is False  # no file yet
    assert redis_client.exists(keys.meta(ID), keys.upload("ef" * 16)) == 0


def staged_write(store, key: tuple[str, int], data: bytes):
    token, n = key
    staged = store.open_staged(ID, n, token, n, len(data))  # chunk n
    for i in range(0, len(data), 3):  # sent piece by piece, as a body arrives
        staged.write(data[i : i + 3])
    return staged


def test_a_chunk_sent_ahead_of_the_script_is_renamed_into_place(store, redis_client):
    key = (new_staging_token(), 0)
    staged = staged_write(store, key, b"abcd")
    assert (
        redis_client.exists(keys.tus_staging(ID, key[1], *key)) == 0
    )  # nothing stored until the SET ends, with the script right behind it
    append(store, 0, 4, [Segment(0, part_of(b"abcd"), staged_key=keys.tus_staging(ID, key[1], *key))], staged=staged)
    assert redis_client.get(chunk_at(redis_client, ID, 0)) == b"abcd"
    assert redis_client.exists(keys.tus_staging(ID, key[1], *key)) == 0
    assert 0 < redis_client.ttl(chunk_at(redis_client, ID, 0)) <= 600
    assert redis_client.hget(keys.upload(ID), "received_bytes") == b"4"


def test_a_refused_append_removes_the_bytes_sent_ahead_and_changes_nothing(store, redis_client):
    before = dump(redis_client)
    key = (new_staging_token(), 1)
    with pytest.raises(OffsetMismatch):
        append(
            store,
            4,
            8,
            [Segment(1, part_of(b"efgh"), staged_key=keys.tus_staging(ID, key[1], *key))],
            staged=staged_write(store, key, b"efgh"),
        )
    assert dump(redis_client) == before
    assert connections_in_use(store.redis) == 0


def test_an_abandoned_write_stores_nothing_and_frees_its_connection(store, redis_client):
    before = dump(redis_client)
    key = (new_staging_token(), 0)
    staged = staged_write(store, key, b"ab")
    staged.abandon()
    staged.abandon()  # twice is fine
    assert dump(redis_client) == before
    assert connections_in_use(store.redis) == 0
    store.redis.ping()  # the pool's connections are in step


def test_a_script_redis_forgot_is_loaded_again(store, redis_client):
    redis_client.script_flush()
    key = (new_staging_token(), 0)
    append(
        store, 0, 4, [Segment(0, part_of(b"abcd"), staged_key=keys.tus_staging(ID, key[1], *key))], staged=staged_write(store, key, b"abcd")
    )
    assert redis_client.get(chunk_at(redis_client, ID, 0)) == b"abcd"


def test_a_staged_chunk_waiting_for_a_checksum_outlives_one_sent_ahead_of_its_script(store, redis_client):
    token = new_staging_token()
    waiting, passing = keys.tus_staging(ID, 0, token, 0), keys.tus_staging(ID, 1, token, 1)
    for n, waits in ((0, True), (1, False)):
        staged = store.open_staged(ID, n, token, n, 2, waits=waits)
        staged.write(b"cd")
        staged.finish()  # the SET alone, as a checksum's chunk is ended
    assert 60 < redis_client.ttl(waiting) <= 600  # the upload's TTL: it waits for the whole body
    assert 0 < redis_client.ttl(passing) <= STAGING_TTL


def append_later(store, expected, new_offset, segments, staged):
    return store.append_later(ID, owner=OWNER, expected=expected, new_offset=new_offset, segments=segments, now_iso="now", staged=staged)


def test_an_append_sent_without_waiting_is_in_place_once_read_while_the_next_chunk_goes_on_another_connection(store, redis_client):
    token = new_staging_token()
    first, second = keys.tus_staging(ID, 0, token, 0), keys.tus_staging(ID, 1, token, 1)
    pending = append_later(store, 0, 4, [Segment(0, part_of(b"abcd"), staged_key=first)], staged_write(store, (token, 0), b"abcd"))
    following = staged_write(store, (token, 1), b"efgh")  # the next chunk streams while the first's replies are read
    assert following._conn is not None and connections_in_use(store.redis) >= 1
    assert pending.result().deadline > 0
    assert redis_client.hget(keys.upload(ID), "received_bytes") == b"4"
    append(store, 4, 8, [Segment(1, part_of(b"efgh"), staged_key=second)], staged=following)
    assert [redis_client.get(chunk_at(redis_client, ID, i)) for i in (0, 1)] == [b"abcd", b"efgh"]
    assert connections_in_use(store.redis) == 0
    assert list(redis_client.scan_iter(match="files:{*}:s:*")) == []


def test_an_append_sent_without_waiting_and_refused_raises_when_read_and_changes_nothing(store, redis_client):
    before = dump(redis_client)
    key = (new_staging_token(), 1)
    pending = append_later(
        store, 4, 8, [Segment(1, part_of(b"efgh"), staged_key=keys.tus_staging(ID, key[1], *key))], staged_write(store, key, b"efgh")
    )
    with pytest.raises(OffsetMismatch) as refused:
        pending.result()
    assert refused.value.offset == 0
    assert dump(redis_client) == before  # the bytes sent ahead were removed with the refusal
    assert connections_in_use(store.redis) == 0


def test_a_script_redis_forgot_is_loaded_again_when_the_append_was_sent_without_waiting(store, redis_client):
    redis_client.script_flush()
    key = (new_staging_token(), 0)
    pending = append_later(
        store, 0, 4, [Segment(0, part_of(b"abcd"), staged_key=keys.tus_staging(ID, key[1], *key))], staged_write(store, key, b"abcd")
    )
    pending.result()
    assert redis_client.get(chunk_at(redis_client, ID, 0)) == b"abcd"
    assert connections_in_use(store.redis) == 0
