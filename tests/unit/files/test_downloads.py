from collections.abc import Iterable
from typing import cast

import pytest
from flask import Flask

from redfile_files.catalogue.downloads import ascii_filename, content_disposition, download_response
from redfile_files.records import FileRecord
from redfile_files.storage.records import ChunkMissing


def record(**kw):
    base = {
        "id": "0" * 32,
        "name": "notes.txt",
        "size": 6,
        "owner": "alice",
        "created_at": "2026-01-01T00:00:00Z",
        "updated_at": "2026-01-01T00:00:00Z",
        "mime_type": "text/plain",
        "sha256": "ab" * 32,
        "kind": "file",
        "total_chunks": 2,
    }
    return FileRecord(**{**base, **kw})


@pytest.mark.parametrize(
    "name, header",
    [
        ("notes.txt", "attachment; filename=\"notes.txt\"; filename*=UTF-8''notes.txt"),
        ("naïve résumé.pdf", "attachment; filename=\"naive resume.pdf\"; filename*=UTF-8''na%C3%AFve%20r%C3%A9sum%C3%A9.pdf"),
        ('say "hi"\\.txt', "attachment; filename=\"say _hi__.txt\"; filename*=UTF-8''say%20%22hi%22%5C.txt"),
        ("100%;x,y.txt", "attachment; filename=\"100_;x,y.txt\"; filename*=UTF-8''100%25%3Bx%2Cy.txt"),
        ("日本.txt", "attachment; filename=\".txt\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC.txt"),
        ("日本", "attachment; filename=\"download\"; filename*=UTF-8''%E6%97%A5%E6%9C%AC"),
    ],
)
def test_content_disposition(name, header):
    assert content_disposition(name) == header


def test_ascii_filename_never_carries_header_breaking_characters():
    for name in ("a\r\nb", 'q"q', "b\\s", "é\x00"):
        fallback = ascii_filename(name)
        assert all(0x20 <= ord(c) < 0x7F for c in fallback) and '"' not in fallback and "\\" not in fallback


def test_download_response_streams_with_safe_headers():
    app = Flask(__name__)
    with app.test_request_context():
        resp = download_response(record(name="ü.txt"), iter([b"abc", b"def"]))
        assert resp.is_streamed
        assert resp.headers["Content-Type"] == "text/plain"
        assert resp.headers["Content-Length"] == "6"
        assert resp.headers["X-Content-Type-Options"] == "nosniff"
        assert resp.headers["ETag"] == f'"{"ab" * 32}"'
        assert "filename*=UTF-8''%C3%BC.txt" in resp.headers["Content-Disposition"]
        assert b"".join(cast("Iterable[bytes]", resp.response)) == b"abcdef"


def test_a_chunk_vanishing_mid_download_cuts_the_stream():
    def chunks():
        yield b"abc"
        raise ChunkMissing(1)

    app = Flask(__name__)
    with app.test_request_context():
        body = iter(download_response(record(), chunks()).response)
        assert next(body) == b"abc"
        with pytest.raises(ChunkMissing):
            next(body)
