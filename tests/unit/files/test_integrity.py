"""Checksums, encryption and raw chunk bodies on their own (no Redis)."""

import base64
import hashlib

import blake3
import google_crc32c
import pytest
from hypothesis import given
from hypothesis import strategies as st

from redfile_common.errors import ApiError
from redfile_common.settings import SettingsError, load_settings
from redfile_dev.testing import settings_overrides
from redfile_files.checksums import (
    ChunkDigest,
    Part,
    composite,
    crc32c_combine,
    file_crc32c,
    parse_crc32c_value,
    parse_sha256_value,
    part_of,
    verify,
)
from redfile_files.crypto import SEAL_OVERHEAD, ChunkCorrupt, ChunkSealer, Encryption, NullSealer, parse_master_keys
from redfile_files.settings import DEFAULT_CHUNK_BYTES, FilesSettings

KEY = base64.b64encode(b"k" * 32).decode()
FID = "0" * 32


def test_part_records_and_the_composite_checksum():
    part = part_of(b"hello")
    assert part == Part(5, f"{google_crc32c.value(b'hello'):08x}", blake3.blake3(b"hello").hexdigest())
    assert part.encode() == f"5:{part.crc32c}:{part.blake3}"  # no SHA-256: the same bytes always make the same record
    assert Part.decode(part.encode()) == part and part_of(b"hello").encode() == part.encode()
    assert part_of(b"hellp") != part
    with pytest.raises(ValueError):
        Part.decode("3:" + "a" * 64)  # not a part record
    parts = [part_of(b"a"), part_of(b"b")]
    expected = blake3.blake3(blake3.blake3(b"a").digest() + blake3.blake3(b"b").digest()).hexdigest()
    assert composite(parts) == f"{expected}-2" and composite([]) == f"{blake3.blake3().hexdigest()}-0"


@given(st.lists(st.binary(max_size=3000), max_size=6))
def test_the_file_crc32c_is_combined_from_its_chunks(pieces):
    whole = b"".join(pieces)
    assert file_crc32c(part_of(p) for p in pieces) == f"{google_crc32c.value(whole):08x}"
    if len(pieces) >= 2:
        a, b = pieces[0], b"".join(pieces[1:])
        assert crc32c_combine(google_crc32c.value(a), google_crc32c.value(b), len(b)) == google_crc32c.value(whole)


def test_a_chunk_digest_computes_sha256_only_when_asked():
    plain, asked = ChunkDigest(), ChunkDigest(sha256=True)
    for d in (plain, asked):
        d.update(b"ab")
        d.update(memoryview(b"cd"))
    assert plain.sha256 == "" and asked.sha256 == hashlib.sha256(b"abcd").hexdigest()
    assert plain.part() == asked.part() == part_of(b"abcd")


def test_checksum_headers_in_hex_or_base64():
    digest = hashlib.sha256(b"x").digest()
    assert parse_sha256_value(digest.hex().upper()) == digest.hex()
    assert parse_sha256_value(base64.b64encode(digest).decode()) == digest.hex()
    assert parse_sha256_value(None) is None and parse_sha256_value(" ") is None
    assert parse_crc32c_value("0A0B0C0D") == "0a0b0c0d" and parse_crc32c_value(base64.b64encode(b"\x01\x02\x03\x04").decode()) == "01020304"
    for bad in ("zz", "ab" * 31, base64.b64encode(b"short").decode()):
        with pytest.raises(ApiError) as err:
            parse_sha256_value(bad)
        assert err.value.status == 422
    with pytest.raises(ApiError):
        parse_crc32c_value("123")


def test_verify_names_the_checksums_that_differ():
    part, sha = part_of(b"abc"), hashlib.sha256(b"abc").hexdigest()
    verify(part, 0, sha256=sha, crc32c=part.crc32c, computed_sha256=sha)
    verify(part, 0, sha256=None, crc32c=None)
    with pytest.raises(ApiError) as err:
        verify(part, 3, sha256="0" * 64, crc32c="00000000", computed_sha256=sha)
    assert err.value.code == "checksum_mismatch" and err.value.details == {"chunk_index": 3, "checksums": ["sha256", "crc32c"]}
    with pytest.raises(ApiError):  # a SHA-256 sent but not computed never passes
        verify(part, 0, sha256=sha, crc32c=None)


def test_master_keys_parse_and_refuse_nonsense_without_echoing_keys():
    keys = parse_master_keys(f"a:{KEY}, b:{KEY}")
    assert [k.kid for k in keys] == ["a", "b"] and parse_master_keys("") == []
    for bad in ("nokid", f"a:{KEY},a:{KEY}", "a:!!!", "a:" + base64.b64encode(b"short").decode(), f":{KEY}"):
        with pytest.raises(ValueError) as err:
            parse_master_keys(bad)
        assert KEY not in str(err.value)


def test_sealed_chunks_open_only_where_they_were_sealed():
    sealer = Encryption(parse_master_keys(f"a:{KEY}")).sealer(FID, Encryption(parse_master_keys(f"a:{KEY}")).new_wrapped_key(FID))
    sealed = sealer.seal(3, b"secret bytes")
    assert len(sealed) == len(b"secret bytes") + SEAL_OVERHEAD and b"secret" not in sealed
    assert sealer.open(3, sealed) == b"secret bytes"
    assert sealer.seal(3, b"secret bytes") != sealed  # a fresh nonce per write
    for index, blob in ((4, sealed), (3, sealed[:-1] + bytes([sealed[-1] ^ 1])), (3, sealed[:10])):
        with pytest.raises(ChunkCorrupt):
            sealer.open(index, blob)
    other = ChunkSealer(b"k" * 32, "1" * 32)
    with pytest.raises(ChunkCorrupt):
        other.open(3, sealed)
    assert NullSealer().open(0, bytes(NullSealer().seal(0, b"x"))) == b"x"


def test_data_keys_unwrap_with_any_configured_master_key():
    old = Encryption(parse_master_keys(f"old:{KEY}"))
    wrapped = old.new_wrapped_key(FID)
    assert wrapped.startswith("old:")
    rotated = Encryption(parse_master_keys(f"new:{base64.b64encode(b'n' * 32).decode()},old:{KEY}"))
    assert rotated.new_wrapped_key(FID).startswith("new:")
    data = rotated.sealer(FID, wrapped).seal(0, b"x")
    assert old.sealer(FID, wrapped).open(0, data) == b"x"
    with pytest.raises(ChunkCorrupt):
        Encryption(parse_master_keys(f"new:{base64.b64encode(b'n' * 32).decode()}")).sealer(FID, wrapped)
    with pytest.raises(ChunkCorrupt):
        old.sealer("1" * 32, wrapped)  # a data key is bound to its file
    assert Encryption([]).new_wrapped_key(FID) == "" and isinstance(Encryption([]).sealer(FID, ""), NullSealer)


def test_new_settings():
    s = load_settings(FilesSettings, settings_overrides("redis://127.0.0.1:1/0"))
    assert s.chunk_bytes == DEFAULT_CHUNK_BYTES == 8 * 1024 * 1024 - 4096
    assert (s.default_quota_bytes, s.sweep_interval, s.sweep_batch, s.encryption_keys) == (100 * 1024**3, 60, 200, "")
    assert load_settings(FilesSettings, settings_overrides("redis://127.0.0.1:1/0", max_chunk_bytes=1000)).chunk_bytes == 1000
    with pytest.raises(SettingsError) as err:
        load_settings(FilesSettings, settings_overrides("redis://127.0.0.1:1/0", encryption_keys="a:" + base64.b64encode(b"x").decode()))
    assert "32 bytes" in str(err.value)


class Sink:
    def __init__(self) -> None:
        self.pieces: list[bytes] = []

    def write(self, piece) -> None:
        self.pieces.append(bytes(piece))


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threads"])
def test_a_body_is_streamed_to_the_sink_and_hashed_in_pieces(monkeypatch, threaded):
    import io

    from redfile_files.checksums import ChunkDigest, FileDigest
    from redfile_files.uploads import intake as intake

    monkeypatch.setattr(intake, "PIECE", 3)
    monkeypatch.setattr(intake, "THREADED_MIN", 1 if threaded else 10**9)
    data = bytes(range(256)) * 3
    sink, chunk, whole = Sink(), ChunkDigest(), FileDigest()
    intake.stream_into(io.BytesIO(data + b"trailing bytes are not read"), len(data), sink, [chunk, whole])
    assert b"".join(sink.pieces) == data and max(len(p) for p in sink.pieces) == 3
    assert chunk.part() == part_of(data)
    assert whole.sha256 == hashlib.sha256(data).hexdigest()


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threads"])
def test_a_body_that_ends_early_is_bad_request(monkeypatch, threaded):
    import io

    from redfile_files.uploads import intake as intake

    monkeypatch.setattr(intake, "THREADED_MIN", 1 if threaded else 10**9)
    with pytest.raises(ApiError) as err:
        intake.stream_into(io.BytesIO(b"short"), 10, Sink(), [hashlib.sha256()])
    assert err.value.code == "bad_request"


def test_a_hashing_error_reaches_the_request_thread(monkeypatch):
    import io

    from redfile_files.uploads import intake as intake

    class Broken:
        def update(self, data):
            raise RuntimeError("boom")

    monkeypatch.setattr(intake, "THREADED_MIN", 1)
    with pytest.raises(RuntimeError, match="boom"):
        intake.stream_into(io.BytesIO(b"abc"), 3, Sink(), [Broken()])


def test_whole_bodies_are_read_to_their_length_or_a_limit(monkeypatch):
    import io

    from redfile_files.uploads import intake as intake

    monkeypatch.setattr(intake, "PIECE", 3)
    assert intake.read_whole(io.BytesIO(b"0123456789"), 10, 16) == b"0123456789"
    assert intake.read_whole(io.BytesIO(b"0123456789"), None, 16) == b"0123456789"  # chunked encoding
    assert intake.read_whole(io.BytesIO(b""), 0, 16) == b""
    with pytest.raises(ApiError) as err:
        intake.read_whole(io.BytesIO(b"x" * 17), None, 16)
    assert err.value.code == "payload_too_large"
    with pytest.raises(ApiError) as err:
        intake.read_whole(io.BytesIO(b"x" * 5), 10, 16)
    assert err.value.code == "bad_request"


def test_running_digests_cover_exactly_the_chunks_acknowledged_in_order():
    from redfile_files.checksums import RunningDigests

    chunks = [b"aa", b"bb", b"cc"]
    running = RunningDigests(max_entries=2)
    assert running.fork("u", 1) is None  # nothing before chunk 0
    first = running.fork("u", 0)
    assert first is not None
    first.update(chunks[0])
    unacknowledged = running.fork("u", 0)
    assert unacknowledged is not None
    unacknowledged.update(b"other bytes, never acknowledged")
    running.advance("u", 0, first)
    running.advance("u", 0, unacknowledged)  # too late: chunk 0 is already in
    second = running.fork("u", 1)
    assert second is not None
    second.update(chunks[1])
    running.advance("u", 1, second)
    assert running.fork("u", 3) is None
    start, digest = running.take("u")
    assert start == 2 and digest.sha256 == hashlib.sha256(b"aabb").hexdigest()
    assert running.take("u")[0] == 0  # taken: completion reads everything again
    for upload in ("a", "b", "c"):  # bounded: the least recently advanced is forgotten
        d = running.fork(upload, 0)
        assert d is not None
        d.update(b"x")
        running.advance(upload, 0, d)
    assert running.take("a")[0] == 0 and running.take("c")[0] == 1


def test_a_file_record_missing_fields_in_redis_reads_them_as_empty():
    from redfile_files.records import FileRecord

    record = FileRecord.from_meta({"id": FID, "name": "a", "size": "3", "owner": "ann", "total_chunks": "1", "crc32c": "0a0b0c0d"})
    assert record.sha256 == "" and record.mime_type == "" and record.size == 3 and record.created_ms == 0
    assert record.etag == f"{FID}-0a0b0c0d"  # no SHA-256 and no composite: still a strong, per-file ETag
    assert FileRecord.from_meta({**record.to_meta(), "composite_blake3": "b" * 64 + "-1"}).etag == "b" * 64 + "-1"


@pytest.mark.parametrize("threaded", [False, True], ids=["inline", "threads"])
def test_a_connection_reset_while_reading_is_bad_request(monkeypatch, threaded):
    from redfile_files.uploads import intake as intake

    monkeypatch.setattr(intake, "THREADED_MIN", 1)

    class Reset:
        def read(self, size):
            raise ConnectionResetError(104, "Connection reset by peer")

    sink = Sink()
    with pytest.raises(ApiError) as err:
        intake.stream_into(Reset(), 10, sink, [hashlib.sha256()], threaded=threaded)
    assert err.value.code == "bad_request" and sink.pieces == []
    for length in (10, None):  # read whole (encrypted and seed uploads, chunked bodies): the same 400
        with pytest.raises(ApiError) as err:
            intake.read_whole(Reset(), length, 16)
        assert err.value.code == "bad_request"


def header_accepted(parse, value: str) -> bool:
    try:
        parse(value)
    except ApiError:
        return False
    return True


SHA = hashlib.sha256(b"x").digest()
HEADER_SAMPLES = [
    "",
    "  ",
    SHA.hex(),
    SHA.hex().upper(),
    f" {SHA.hex()} ",
    base64.b64encode(SHA).decode(),
    base64.b64encode(SHA).decode().rstrip("="),
    SHA.hex()[:-1],
    "0badc0de",
    base64.b64encode(b"\x01\x02\x03\x04").decode(),
    "AQIDBA",
    "zzzzzzzz",
    base64.b64encode(b"12345").decode(),
]


@pytest.mark.parametrize("value", HEADER_SAMPLES)
def test_the_documented_checksum_header_patterns_are_the_parsers_rules(value):
    import re

    from redfile_files.checksums import CRC32C_HEADER_PATTERN, SHA256_HEADER_PATTERN, parse_crc32c_value, parse_sha256_value

    assert (re.fullmatch(SHA256_HEADER_PATTERN, value) is not None) == header_accepted(parse_sha256_value, value), value
    assert (re.fullmatch(CRC32C_HEADER_PATTERN, value) is not None) == header_accepted(parse_crc32c_value, value), value
