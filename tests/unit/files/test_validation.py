import base64
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from redfile_common.errors import ApiError
from redfile_files.validation import (
    DEFAULT_MIME_TYPE,
    MIME_PATTERN,
    decode_base64,
    decode_cursor,
    encode_cursor,
    is_file_id,
    lenient_mime_type,
    name_pattern,
    parse_sha256,
    validate_mime_type,
    validate_name,
)

ID = "0123456789abcdef0123456789abcdef"


@pytest.mark.parametrize(
    "name", ["notes.txt", "naïve ü.txt", "a b", "日本語のファイル.pdf", "emoji 🎉.png", ".hidden", "x" * 255, "é" * 127, "a..b", "-rf"]
)
def test_good_names_are_kept_as_is(name):
    assert validate_name(name) == name


@pytest.mark.parametrize(
    "name",
    [
        "",
        ".",
        "..",
        "../x",
        "a/b",
        "/etc/passwd",
        "a\\b",
        "..\\x",
        "a\x00b",
        "a\x07b",
        "tab\there",
        "line\nbreak",
        "cr\r",
        "del\x7f",
        "c1\x85",
        "bidi\u202etxt.exe",
        "sep\u2028x",
        " lead",
        "trail ",
        "trail\u00a0",
        "\u3000x",
        "x" * 256,
        "é" * 128,
        "\ud800",
        "\u200b",  # zero width space: a name nobody can see or type
        "\ufeff",  # byte order mark
        "\u200b\ufeff\u2060",
        "\u200c\u200d",
        "\u3164",  # Hangul filler: a letter that draws nothing
        "\u2800\u2800",  # braille blank
        "\u0301",  # a lone combining mark
        None,
        42,
        b"bytes",
    ],
)
def test_bad_names_are_refused(name):
    with pytest.raises(ApiError) as err:
        validate_name(name)
    assert err.value.code == "invalid_name" and err.value.status == 400


@pytest.mark.parametrize("name", ["a\u200bb", "\ufeffx.txt", "e\u0301.txt", "\u200dx"])
def test_invisible_characters_beside_visible_ones_are_kept(name):
    assert validate_name(name) == name


def test_name_limit_is_configurable_in_bytes():
    assert validate_name("ab", max_bytes=2) == "ab"
    with pytest.raises(ApiError):
        validate_name("é", max_bytes=1)


@pytest.mark.parametrize(
    "value, expected",
    [
        ("text/plain", "text/plain"),
        ("Text/HTML", "text/html"),
        ("text/plain; charset=utf-8", "text/plain; charset=utf-8"),
        ("text/plain;charset=UTF-8", "text/plain;charset=UTF-8"),
        ('multipart/form-data; boundary="a b;c"', 'multipart/form-data; boundary="a b;c"'),
        ("application/vnd.api+json", "application/vnd.api+json"),
        ("  image/png  ", "image/png"),
        (None, DEFAULT_MIME_TYPE),
        ("", DEFAULT_MIME_TYPE),
    ],
)
def test_good_mime_types(value, expected):
    assert validate_mime_type(value) == expected


@pytest.mark.parametrize(
    "value",
    [
        "text",
        "text/",
        "/plain",
        "text/plain;",
        "text/pl ain",
        "text/plain\r\nX-Evil: 1",
        "tëxt/plain",
        "text/plain; charset",
        'text/plain; a="unterminated',
        "a/b/c",
        "text/plain; =x",
        "x/" + "y" * 254,
        5,
        ["text/plain"],
    ],
)
def test_bad_mime_types(value):
    with pytest.raises(ApiError) as err:
        validate_mime_type(value)
    assert err.value.code == "invalid_mime_type" and err.value.status == 400


def test_lenient_mime_type_falls_back_to_the_default():
    assert lenient_mime_type("image/png") == "image/png"
    assert lenient_mime_type("not a type") == DEFAULT_MIME_TYPE
    assert lenient_mime_type(None) == DEFAULT_MIME_TYPE


def test_file_ids_are_32_lowercase_hex():
    assert is_file_id(ID)
    for bad in (ID.upper(), ID[:-1], ID + "0", "../" + ID[3:], None, 7, ID[:-1] + "g"):
        assert not is_file_id(bad)


def test_sha256_parsing():
    digest = "AB" * 32
    assert parse_sha256(digest) == digest.lower()
    assert parse_sha256(None) is None and parse_sha256("") is None
    for bad in ("ab" * 31, "zz" * 32, 12):
        with pytest.raises(ApiError) as err:
            parse_sha256(bad)
        assert err.value.code == "validation_error"


@pytest.mark.parametrize(
    "text",
    [
        base64.b64encode(b"\x00\xffhello\xfe").decode(),
        base64.urlsafe_b64encode(b"\xfb\xff\xfe binary").decode(),
        base64.b64encode(b"hello!").decode().rstrip("="),
        base64.b64encode(b"hello").decode().rstrip("="),
        "\n".join(["aGVs", "bG8="]),
    ],
)
def test_base64_accepts_standard_urlsafe_unpadded_and_wrapped(text):
    data = decode_base64(text)
    assert base64.b64encode(data).decode().rstrip("=") == "".join(text.split()).replace("-", "+").replace("_", "/").rstrip("=")


def test_base64_of_nothing_is_empty():
    assert decode_base64("") == b""


@pytest.mark.parametrize("text", ["abc*", "a", "abcde", "ab=c", "aGVsbG8=aGVs", "####", 12, None, ["aGk="]])
def test_bad_base64_is_refused(text):
    with pytest.raises(ApiError) as err:
        decode_base64(text)
    assert err.value.code == "invalid_base64" and err.value.status == 400


def test_cursor_round_trip_and_garbage():
    assert decode_cursor(encode_cursor(1764147799123, ID)) == (1764147799123, ID)
    assert decode_cursor(None) is None and decode_cursor("") is None
    for bad in ("!!!", base64.urlsafe_b64encode(b"12:nothex").decode(), base64.urlsafe_b64encode(b"x:" + ID.encode()).decode(), "\u00e9"):
        with pytest.raises(ApiError) as err:
            decode_cursor(bad)
        assert err.value.code == "validation_error" and err.value.status == 422


def accepted(name: str) -> bool:
    try:
        validate_name(name)
    except ApiError:
        return False
    return True


NAME_SAMPLES = [
    *["notes.txt", ".hidden", "a b", "..x", "x..", "é", "\u200bx", "x\u200b", "e\u0301", "\U0001f389", "\U000e0041x"],
    *["", ".", "..", "...", ". .", " x", "x ", "a/b", "a\\b", "a\x00", "\u200b", "..\u200b", "\u0301", "\u3000x", "x\u00a0"],
    *["\ufffd", "a\u202eb", "\ufeff", "\u2028", "\U000e0041"],
]


@pytest.mark.parametrize("name", NAME_SAMPLES)
def test_the_documented_name_pattern_is_the_rule(name):
    assert (re.fullmatch(name_pattern(), name) is not None) == accepted(name), name


@settings(max_examples=500, deadline=None, derandomize=True, database=None)
@given(st.text(st.characters(codec="utf-8"), max_size=20) | st.text(st.sampled_from(" .a/\u200b\u0301\ufeff\u3000\x00é"), max_size=6))
def test_the_documented_name_pattern_is_the_rule_for_any_text(name):
    assert (re.fullmatch(name_pattern(), name) is not None) == accepted(name), ascii(name)


def mime_accepted(value: str) -> bool:
    try:
        validate_mime_type(value)
    except ApiError:
        return False
    return True


@pytest.mark.parametrize(
    "value", ["", "text/plain", " text/plain ", "text/plain; charset=utf-8", 'a/b;x="q y"', "   ", "text", "a b/c", "tëxt/plain", "\ufffd"]
)
def test_the_documented_mime_pattern_is_the_rule(value):
    assert (re.fullmatch(MIME_PATTERN, value) is not None) == mime_accepted(value), value


@settings(max_examples=300, deadline=None, derandomize=True, database=None)
@given(st.from_regex(MIME_PATTERN, fullmatch=True).filter(lambda v: len(v) <= 255) | st.text(max_size=12))
def test_the_documented_mime_pattern_is_the_rule_for_any_text(value):
    assert (re.fullmatch(MIME_PATTERN, value) is not None) == mime_accepted(value), ascii(value)
