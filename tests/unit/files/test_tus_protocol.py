"""tus header grammar: Upload-Metadata, Upload-Concat, Upload-Checksum, integers."""

import base64
import hashlib

import pytest

from redfile_common.errors import ApiError
from redfile_files.tus.protocol import BodyChecksum, parse_checksum, parse_concat, parse_metadata, parse_uint

ID_A, ID_B = "a" * 32, "b" * 32


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def test_metadata_is_parsed_and_normalised():
    meta = parse_metadata(f" filename {b64('é.txt'.encode())} ,flag, filetype {b64(b'text/plain')}")
    assert meta.values == {"filename": "é.txt".encode(), "flag": None, "filetype": b"text/plain"}
    assert meta.raw == f"filename {b64('é.txt'.encode())},flag,filetype {b64(b'text/plain')}"
    assert meta.text("filename") == "é.txt" and meta.text("missing", "filetype") == "text/plain"
    assert parse_metadata(None).raw == parse_metadata("  ").raw == ""


@pytest.mark.parametrize("raw", ["k v!", "a YQ==,a Yg==", ",", "ké YQ==", "k\r\nX: y", "k " + "A" * 5000])
def test_bad_metadata_is_a_400(raw):
    with pytest.raises(ApiError) as caught:
        parse_metadata(raw)
    assert caught.value.status == 400


def test_metadata_text_must_be_utf8():
    with pytest.raises(ApiError):
        parse_metadata("filename " + b64(b"\xff")).text("filename")


def test_concat_headers():
    assert parse_concat(None).kind == "" and parse_concat("partial").kind == "partial"
    final = parse_concat(f"final;/tus/{ID_A} https://files.example/x/tus/{ID_B}/")
    assert final.kind == "final" and final.parts == (ID_A, ID_B)
    assert final.raw == f"final;/tus/{ID_A} https://files.example/x/tus/{ID_B}/"
    for bad in ("final", "final;", "final;/tus/abc", f"final;/files/{ID_A}", f"partial;/tus/{ID_A}", "nonsense", f"final;/tus/{ID_A}\x01"):
        with pytest.raises(ApiError):
            parse_concat(bad)


def test_checksums_parse_and_match():
    data = b"hello world"
    algo, digest = parse_checksum(f"sha1 {b64(hashlib.sha1(data).digest())}")
    assert algo == "sha1"
    check = BodyChecksum((algo, digest))
    check.update(data[:5])
    check.update(memoryview(data)[5:])
    assert check.matches()
    wrong = BodyChecksum((algo, hashlib.sha1(b"other").digest()))
    wrong.update(data)
    assert not wrong.matches()
    for bad in ("sha3 AAAA", "sha1", "sha1 !!!!", f"sha1 {b64(bytes(21))}", f"SHA1 {b64(bytes(20))}"):
        with pytest.raises(ApiError) as caught:
            parse_checksum(bad)
        assert caught.value.status == 400


def test_a_trailer_checksum_is_chosen_after_the_body():
    data = b"trailing"
    check = BodyChecksum(lambda: f"md5 {b64(hashlib.md5(data).digest())}")
    check.update(data)
    assert check.from_trailer and check.matches()
    with pytest.raises(ApiError):
        BodyChecksum(lambda: None).matches()


def test_unsigned_integers():
    assert parse_uint(None, "X") is None and parse_uint(" 42 ", "X") == 42
    for bad in ("-1", "1.5", "", "0x10", "9" * 20):
        with pytest.raises(ApiError):
            parse_uint(bad, "X")
