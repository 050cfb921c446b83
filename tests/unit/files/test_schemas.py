"""``FileOut``'s fast dump of a ``FileRecord`` is marshmallow's dump of it, key for key and in the same order."""

from __future__ import annotations

import json
from types import SimpleNamespace

from hypothesis import given, settings
from hypothesis import strategies as st
from marshmallow import Schema as MarshmallowSchema

from redfile_files.catalogue.schemas import TextOut
from redfile_files.records import FileRecord
from redfile_files.schemas import FileItem, FileOut, FilePage

texts = st.one_of(st.just(""), st.text(max_size=20))
counts = st.integers(min_value=0, max_value=2**53 - 1)
records = st.builds(
    FileRecord,
    id=st.text(alphabet="0123456789abcdef", min_size=32, max_size=32),
    name=texts,
    size=counts,
    owner=texts,
    created_at=texts,
    updated_at=texts,
    mime_type=texts,
    sha256=texts,
    kind=st.sampled_from(["file", "text"]),
    total_chunks=counts,
    chunk_size=counts,
    crc32c=texts,
    expires_at=texts,
    expires_ts=counts,
    created_ms=counts,
    dek=texts,
    composite_blake3=texts,
)


def marshmallow_dump(schema, obj):
    return MarshmallowSchema.dump(schema, obj)


@settings(max_examples=300, deadline=None)
@given(records)
def test_the_fast_dump_is_marshmallows(record):
    for schema in (FileOut(), FileItem()):
        fast, slow = schema.dump(record), marshmallow_dump(schema, record)
        assert fast == slow and list(fast) == list(slow)
        assert json.dumps(fast) == json.dumps(slow)


@settings(max_examples=50, deadline=None)
@given(st.lists(records, max_size=4))
def test_a_page_of_files_dumps_each_item_the_same_way(items):
    page = FilePage().dump({"items": items, "next_cursor": None})
    assert page["items"] == [marshmallow_dump(FileItem(), r) for r in items]


def test_subclasses_with_more_fields_and_other_objects_go_through_marshmallow():
    record = FileRecord(
        id="a" * 32, name="n", size=1, owner="o", created_at="c", updated_at="u", mime_type="m", sha256="", kind="text", total_chunks=1
    )
    text = SimpleNamespace(**{**record.to_meta(), "content": "hello", "encrypted": False})
    assert TextOut().dump(text)["content"] == "hello"
    assert FileOut().dump(SimpleNamespace(**record.to_meta(), encrypted=False)) == FileOut().dump(record)
    assert FileOut(only=("id",)).dump(record) == {"id": "a" * 32}
    assert FileOut(many=True).dump([record]) == [FileOut().dump(record)]
