"""What a folder may be (``validate_folder``) and its key in the owner's indexes (``folder_key``)."""

import re

import pytest

from redfile_common.errors import ApiError
from redfile_files.validation import MAX_FOLDER_BYTES, MAX_FOLDER_DEPTH, folder_key, folder_pattern, validate_folder


@pytest.mark.parametrize(
    "folder", ["/", "/a", "/projects/2026", "/Résumés/été", "/a b/c.d", "/日本/写真", "/..a/b..", "/x" * MAX_FOLDER_DEPTH]
)
def test_good_folders_are_kept_as_is(folder):
    assert validate_folder(folder) == folder


@pytest.mark.parametrize(
    "folder",
    [
        "",  # empty
        "a",  # relative
        "a/b",
        "//",  # empty segments
        "/a//b",
        "/a/",  # a trailing slash is an empty last segment
        "/..",
        "/a/../b",
        "/a/./b",
        "/a\\b",  # a backslash is a separator to some tools
        "/a\x00b",  # control characters
        "/a\nb",
        "/a\u202eb",  # bidi override
        "/\u200b",  # a segment nobody can see
        "/ a",  # a segment with an edge of whitespace
        "/a /b",
        "/a\ufffd",  # bytes that were not UTF-8
        "/x" * (MAX_FOLDER_DEPTH + 1),  # too deep
        "/" + "a" * MAX_FOLDER_BYTES,  # too long
        None,
        7,
        ["/a"],
    ],
)
def test_bad_folders_are_refused_with_a_stable_code(folder):
    with pytest.raises(ApiError) as caught:
        validate_folder(folder)
    assert caught.value.code == "invalid_folder"
    assert caught.value.status == 400


def test_a_missing_folder_is_the_root():
    assert validate_folder(None, default="/") == "/"


def test_folder_keys_make_a_folder_a_range_and_a_subtree_a_prefix():
    assert folder_key("/") == "/"
    assert folder_key("/a") == "/a/"
    assert folder_key("/a/b") == "/a/b/"
    # a folder's key is a prefix of its subfolders' keys, never of a sibling's with a longer name
    assert folder_key("/a/b").startswith(folder_key("/a"))
    assert not folder_key("/ab").startswith(folder_key("/a"))


@pytest.mark.parametrize(
    "folder", ["/", "/a", "/Résumés/été", "/x" * MAX_FOLDER_DEPTH, "a", "/a//b", "/a/", "/..", "/a\u202eb", "/x" * 33, "/ a"]
)
def test_the_documented_folder_pattern_is_the_rule(folder):
    try:
        validate_folder(folder)
        valid = True
    except ApiError:
        valid = False
    assert (re.fullmatch(folder_pattern(), folder) is not None) == valid
