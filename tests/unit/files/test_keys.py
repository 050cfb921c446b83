"""The key grammar: every key a builder makes parses back to its family; the docs show the same table."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from redfile_files.storage import keys

FID = "0123456789abcdef" * 2
ARCHITECTURE = Path(__file__).resolve().parents[3] / "docs" / "architecture.md"


@pytest.mark.parametrize(
    "key, family",
    [
        (f"files:{{{FID}}}:meta", ("id", FID, "meta", "hash", "")),
        (f"files:{{{FID}}}:c:12", ("id", FID, "chunk", "string", "12")),
        (f"files:{{{FID}.12}}:c:{'0f' * 8}", ("chunk", FID, "chunk", "string", "12")),
        (f"files:{{{FID}.3}}:in:{'ab' * 8}", ("chunk", FID, "staging", "string", "3")),
        (f"files:{{{FID}.4}}:s:{'cd' * 8}:7", ("chunk", FID, "staging", "string", "4")),
        (f"files:{{{FID}}}:gone", ("id", FID, "gone", "hash", "")),
        (f"files:{{{FID}}}:in:3:{'ab' * 8}", ("id", FID, "staging", "string", "3")),
        (f"files:{{{FID}}}:s:{'cd' * 8}:7", ("id", FID, "staging", "string", "7")),
        (f"files:{{{FID}}}:share:{'e' * 32}", ("id", FID, "share", "hash", "e" * 32)),
        ("files:{u:ann.b@x}:held", ("user", "ann.b@x", "held", "hash", "")),
        ("files:{u:a:b}:due", ("user", "a:b", "due", "zset", "")),
        (f"files:{{l:{'9' * 64}}}:pwfail", ("link", "9" * 64, "pwfail", "string", "")),
        (f"files:{{l:{'9' * 64}}}:pwcheck", ("link", "9" * 64, "pwcheck", "zset", "")),
        (f"files:{{l:{'9' * 64}}}:pwfail:203.0.113.9", ("link", "9" * 64, "pwfail-client", "string", "203.0.113.9")),
        (f"files:{{l:{'9' * 64}}}:pwcheck:2001:db8::/64", ("link", "9" * 64, "pwcheck-client", "zset", "2001:db8::/64")),
        (f"files:{{l:{'9' * 64}}}:pwwait:x-{'0f' * 8}", ("link", "9" * 64, "pwwait", "string", "x-" + "0f" * 8)),
        ("files:{all}:sweep-lock", ("all", "all", "sweep-lock", "string", "")),
    ],
)
def test_known_families(key, family):
    fam = keys.classify(key)
    assert fam is not None
    assert (fam.space, fam.tag, fam.part, fam.type, fam.arg) == family


@pytest.mark.parametrize(
    "key",
    [
        "files:meta",
        "files:{}:meta",
        f"files:{{{FID.upper()}}}:meta",
        f"files:{{{FID}}}:thumb",
        f"files:{{{FID}}}:c:",
        f"files:{{{FID}}}:c:-1",
        f"files:{{{FID}}}:c:007",
        f"files:{{{FID}}}:in:3:short",
        f"files:{{{FID}.03}}:c:{'0f' * 8}",
        f"files:{{{FID}.3}}:c:{'0f' * 7}",
        f"files:{{{FID}.3}}:meta",
        "files:{u:}:held",
        "files:{u:ann}:notes",
        f"files:{{l:{'9' * 63}}}:link",
        "files:{all}:locks",
        "files:{ALL}:files",
        f"files:{{{FID}}}:meta:extra",
        "other:{all}:files",
    ],
)
def test_anything_else_is_unknown(key):
    assert keys.classify(key) is None


def test_every_builder_makes_a_key_of_its_family():
    token, sha = "ab" * 8, "9" * 64
    built = {
        keys.upload(FID): "upload",
        keys.parts(FID): "parts",
        keys.meta(FID): "meta",
        keys.chunk(FID, 0, f"3:00000000:{'ab' * 32}"): "chunk",
        keys.chunk(FID, 0, "", keys.LEGACY): "chunk",
        keys.gone(FID): "gone",
        keys.incoming(FID, 3): "staging",
        keys.tus_staging(FID, 3, token, 2): "staging",
        keys.share(FID, "e" * 32): "share",
        keys.shares(FID): "shares",
        keys.recipients(FID): "recipients",
        keys.resume(FID, "e" * 32, "d" * 32): "resume",
        keys.link(sha): "link",
        keys.password_failures(sha): "pwfail",
        keys.password_checks(sha): "pwcheck",
        keys.password_client_failures(sha, "203.0.113.9"): "pwfail-client",
        keys.password_client_checks(sha, "2001:db8::/64"): "pwcheck-client",
        keys.password_wait(sha, "x-" + "0f" * 8): "pwwait",
        keys.quota("ann"): "quota",
        keys.held("ann"): "held",
        keys.user_files("ann"): "files",
        keys.user_names("ann"): "names",
        keys.user_sizes("ann"): "sizes",
        keys.index_rows("ann"): "rows",
        keys.due("ann"): "due",
        keys.user_links("ann"): "links",
        keys.inbox("ann"): "inbox",
        keys.ALL_FILES: "files",
        keys.ALL_SIZES: "sizes",
        keys.ALL_BYTES: "bytes",
        keys.ALL_UPLOADS: "uploads",
        keys.SWEEP_LOCK: "sweep-lock",
        keys.GC_CURSOR: "gc-cursor",
    }
    for key, part in built.items():
        family = keys.classify(key)
        assert family is not None and family.part == part, key
    assert {ks.part for ks in keys.KEY_SPACES} == set(built.values())  # every family has a builder
    assert keys.user_of_due_key(keys.due("a:b}c").encode()) == "a:b}c"


def test_the_key_table_in_docs_architecture_is_the_one_in_the_code():
    rows = [line for line in ARCHITECTURE.read_text().splitlines() if re.match(r"\| `files:\{", line)]
    assert rows == keys.doc_rows()


def test_an_upload_mode_in_the_table_is_an_upload_mode_of_the_code():
    upload_row = next(r for r in keys.doc_rows() if r.startswith("| `files:{<id>}:upload`"))
    assert all(f"`{m}`" in upload_row for m in keys.UploadMode)
