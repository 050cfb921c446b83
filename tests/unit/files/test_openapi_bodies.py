"""The hand-parsed upload bodies are documented from the same schemas that validate them."""

from marshmallow.validate import Regexp

from redfile_files.openapi import chunk_body, chunk_query, file_body
from redfile_files.uploads.schemas import ChunkFieldsIn, FileFormIn, FileJsonIn


def test_every_chunk_form_documents_exactly_the_validating_schema():
    fields = set(ChunkFieldsIn().fields)
    body = chunk_body()["content"]
    for form in ("application/json", "multipart/form-data"):
        schema = body[form]["schema"]
        assert set(schema["properties"]) == fields | {"chunk_data"}, form
        assert set(schema["required"]) == {"chunk_index", "total_chunks", "chunk_data"}
        assert schema["properties"]["chunk_index"]["minimum"] == 0
        validator = ChunkFieldsIn().fields["sha256"].validators[0]
        assert isinstance(validator, Regexp)
        assert schema["properties"]["sha256"]["pattern"] == validator.regex.pattern
    assert {p["name"] for p in chunk_query()} == fields


def test_file_upload_forms_come_from_their_schemas():
    content = file_body()["content"]
    assert set(content["application/json"]["schema"]["properties"]) == set(FileJsonIn().fields)
    assert set(content["multipart/form-data"]["schema"]["properties"]) == set(FileFormIn().fields) | {"file"}


def test_the_schema_refuses_what_the_document_forbids():
    import pytest
    from marshmallow import ValidationError

    for bad in (
        {"chunk_index": -1, "total_chunks": 2},
        {"chunk_index": 2, "total_chunks": 2},
        {"chunk_index": 1.5, "total_chunks": 2},
        {"chunk_index": True, "total_chunks": 2},
        {"chunk_index": 0, "total_chunks": 1, "sha256": "xyz"},
    ):
        with pytest.raises(ValidationError):
            ChunkFieldsIn().load(bad)
    assert ChunkFieldsIn().load({"chunk_index": "3", "total_chunks": "4"}) == {"chunk_index": 3, "total_chunks": 4}
