"""The three chunk forms and the one-request upload forms, parsed from fake requests (no server)."""

import base64
import hashlib
import io

import pytest
from flask import Flask, request

from redfile_common.errors import ApiError
from redfile_files.uploads.bodies import read_chunk_request, read_file_upload
from redfile_files.uploads.schemas import FileJsonIn

ID = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def app():
    return Flask(__name__)


def chunk(app, max_chunk_bytes=16, max_chunks=10, **kw):
    with app.test_request_context("/upload_chunk", method="POST", **kw):
        return read_chunk_request(request, max_chunk_bytes=max_chunk_bytes, max_chunks=max_chunks)


def error(fn, *args, **kw) -> ApiError:
    with pytest.raises(ApiError) as err:
        fn(*args, **kw)
    return err.value


def test_multipart_file_part(app):
    got = chunk(app, data={"chunk_index": "1", "total_chunks": "3", "file_id": ID, "chunk_data": (io.BytesIO(b"\x00\xff"), "c")})
    assert (got.file_id, got.chunk_index, got.total_chunks, got.data, got.sha256) == (ID, 1, 3, b"\x00\xff", None)


def test_multipart_text_field_is_base64_and_file_id_may_be_empty(app):
    got = chunk(app, data={"chunk_index": "0", "total_chunks": "1", "file_id": "", "chunk_data": base64.b64encode(b"hi").decode()})
    assert got.file_id is None and got.data == b"hi"


def test_json_base64(app):
    sha = hashlib.sha256(b"hello").hexdigest().upper()
    got = chunk(app, json={"chunk_index": 0, "total_chunks": 2, "chunk_data": base64.b64encode(b"hello").decode(), "sha256": sha})
    assert got.data == b"hello" and got.sha256 == sha.lower() and got.file_id is None


def test_raw_octet_stream_with_query_fields(app):
    got = chunk(
        app,
        query_string={"file_id": ID, "chunk_index": "2", "total_chunks": "3"},
        data=b"\x01\x02",
        content_type="application/octet-stream",
    )
    assert (got.file_id, got.chunk_index, got.data) == (ID, 2, b"\x01\x02")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"total_chunks": 2}, "chunk_index"),
        ({"chunk_index": 0}, "total_chunks"),
        ({"chunk_index": -1, "total_chunks": 2}, "chunk_index"),
        ({"chunk_index": 2, "total_chunks": 2}, "chunk_index"),
        ({"chunk_index": 10**40, "total_chunks": 2}, "chunk_index"),
        ({"chunk_index": 0, "total_chunks": 0}, "total_chunks"),
        ({"chunk_index": 0, "total_chunks": 11}, "total_chunks"),
        ({"chunk_index": "zero", "total_chunks": 2}, "chunk_index"),
        ({"chunk_index": 1.5, "total_chunks": 2}, "chunk_index"),
        ({"chunk_index": True, "total_chunks": 2}, "chunk_index"),
        ({"chunk_index": 0, "total_chunks": 2, "file_id": 5}, "file_id"),
        ({"chunk_index": 0, "total_chunks": 2, "sha256": "nothex"}, "sha256"),
    ],
)
def test_bad_fields_are_validation_errors_naming_the_field(app, fields, field):
    body = {"chunk_data": "aGk=", **fields}
    err = error(chunk, app, json=body)
    assert err.code == "validation_error" and err.status == 422
    assert err.details is not None and field in err.details["json"]


def test_missing_chunk_data(app):
    for kw in ({"json": {"chunk_index": 0, "total_chunks": 1}}, {"data": {"chunk_index": "0", "total_chunks": "1"}}):
        err = error(chunk, app, **kw)
        assert err.code == "validation_error" and err.details is not None and "chunk_data" in next(iter(err.details.values()))


def test_oversized_chunks_are_413_in_every_form(app):
    big = b"x" * 17
    for kw in (
        {"data": {"chunk_index": "0", "total_chunks": "1", "chunk_data": (io.BytesIO(big), "c")}},
        {"json": {"chunk_index": 0, "total_chunks": 1, "chunk_data": base64.b64encode(big).decode()}},
        {"query_string": {"chunk_index": "0", "total_chunks": "1"}, "data": big, "content_type": "application/octet-stream"},
    ):
        err = error(chunk, app, **kw)
        assert err.code == "payload_too_large" and err.status == 413


def test_a_chunk_of_exactly_the_limit_is_fine(app):
    assert len(chunk(app, json={"chunk_index": 0, "total_chunks": 1, "chunk_data": base64.b64encode(b"x" * 16).decode()}).data) == 16


def test_invalid_base64_and_odd_bodies(app):
    assert error(chunk, app, json={"chunk_index": 0, "total_chunks": 1, "chunk_data": "***"}).code == "invalid_base64"
    assert error(chunk, app, json=[1, 2]).code == "invalid_json"
    assert error(chunk, app, data="{nope", content_type="application/json").code == "invalid_json"
    assert error(chunk, app, data="x", content_type="text/plain").code == "unsupported_media_type"


def upload(app, max_bytes=16, **kw):
    with app.test_request_context("/files", method="POST", **kw):
        return read_file_upload(request, FileJsonIn(), max_bytes=max_bytes)


def test_file_upload_multipart_defaults_to_the_parts_name_and_type(app):
    got = upload(app, data={"file": (io.BytesIO(b"abc"), "a.png", "image/png")})
    assert (got.data, got.name, got.mime_type) == (b"abc", "a.png", "image/png")
    got = upload(app, data={"file": (io.BytesIO(b"abc"), "a.png", "bogus"), "name": "b.bin"})
    assert (got.name, got.mime_type) == ("b.bin", "application/octet-stream")
    got = upload(app, data={"file": (io.BytesIO(b"abc"), "a.png"), "mime_type": "not valid"})
    assert got.mime_type == "not valid"  # explicit: the domain validates it and refuses


def test_file_upload_json(app):
    got = upload(app, json={"name": "n.bin", "data": base64.b64encode(b"\x00\x01").decode()})
    assert (got.data, got.name, got.mime_type) == (b"\x00\x01", "n.bin", None)


def test_file_upload_errors(app):
    assert error(upload, app, json={"data": "aGk="}).details == {"json": {"name": ["Missing data for required field."]}}
    assert error(upload, app, json={"name": "x", "data": "%%%"}).code == "invalid_base64"
    assert error(upload, app, json={"name": "x", "data": base64.b64encode(b"y" * 17).decode()}).code == "payload_too_large"
    assert error(upload, app, data={"file": (io.BytesIO(b"y" * 17), "a")}).code == "payload_too_large"
    assert error(upload, app, data={"name": "x"}).code == "validation_error"
    assert error(upload, app, data={"file": (io.BytesIO(b"y"), "")}).code == "validation_error"
    assert error(upload, app, data=b"raw", content_type="application/octet-stream").code == "unsupported_media_type"
