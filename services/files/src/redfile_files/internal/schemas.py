"""Schemas of the internal routes (service tokens: admin's view of files, quotas, counts, the consistency check)."""

from __future__ import annotations

from apiflask import Schema
from apiflask.fields import Boolean, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, Range, Regexp

from redfile_common.fields import JsonInteger
from redfile_files.schemas import MAX_DECLARED_BYTES, JsonIn, PageQuery, QueryIn, owner


class InternalPageQuery(PageQuery):
    owner = String(load_default=None, validate=Length(min=1, max=200), metadata={"description": "omit for every file"})


class QuotaIn(JsonIn):
    quota_bytes = JsonInteger(
        required=True,
        allow_none=True,
        validate=Range(min=0, max=MAX_DECLARED_BYTES),
        metadata={"description": "bytes the user may hold; null: the service default"},
    )
    max_file_bytes = JsonInteger(
        load_default=None,
        allow_none=True,
        validate=Range(min=1, max=MAX_DECLARED_BYTES),
        metadata={"description": "the user's largest file; null: the service default"},
    )


class OwnerDeleteQuery(QueryIn):
    account = String(
        load_default=None,
        validate=Regexp(r"^(?:[0-9a-f]{32}|none)$"),
        metadata={
            "description": "the account the name must still be (its id), or `none`: the name must be nobody's; when auth says "
            "another account has the name, nothing is removed (409). Omit to remove whatever the name holds."
        },
    )


class DeletedOut(Schema):
    deleted = Integer(metadata={"description": "files deleted"})
    shares_removed = Integer(metadata={"description": "files shared with the user that no longer are"})


class StatsQuery(QueryIn):
    owner = owner("one user's counts; omit for everyone's", load_default=None, validate=Length(min=1, max=128))


class StatsOut(Schema):
    files = Integer(required=True, metadata={"description": "stored files and texts"})
    bytes_stored = Integer(required=True, metadata={"description": "the sum of their sizes"})
    active_uploads = Integer(required=True, metadata={"description": "chunked uploads in progress (not completed, aborted or expired)"})


class ConsistencyQuery(Schema):
    deep = Boolean(
        load_default=False,
        metadata={
            "description": "also read every file's bytes and check them against its CRC32C and composite (and SHA-256, when it has one)"
        },
    )
    strict = Boolean(load_default=False, metadata={"description": "stale links/inbox entries fail the check too"})
    max_seconds = Float(
        load_default=50.0,
        validate=Range(min=1, max=55),
        metadata={"description": "stop the walk after this long (the report is then incomplete)"},
    )


class ConsistencyProblemOut(Schema):
    kind = String()
    severity = String(metadata={"enum": ["error", "stale"]})
    key = String()
    detail = String()
    id = String(allow_none=True)
    user = String(allow_none=True)


class ConsistencyPendingOut(Schema):
    id = String()
    user = String(allow_none=True)
    reason = String(metadata={"enum": ["due", "leased", "active"]})
    issues = List(String())


class ConsistencyUserOut(Schema):
    user = String()
    used = Integer(metadata={"description": "quota.used"})
    charged = Integer(metadata={"description": "the sum of the user's charges (held c:)"})
    files = Integer()
    files_bytes = Integer(metadata={"description": "the sum of the sizes of the user's files"})
    reserved = Integer(metadata={"description": "quota.reserved"})
    reservations = Integer(metadata={"description": "the sum of the user's reservations (held r:)"})
    uploads = Integer()
    uploads_min_bytes = Integer(metadata={"description": "what the user's uploads must at least hold reserved"})
    ok = Boolean()


class ConsistencyOut(Schema):
    ok = Boolean(metadata={"description": "complete, and no error (with strict: no stale entry either)"})
    complete = Boolean(metadata={"description": "false: the walk ran out of time"})
    deep = Boolean()
    strict = Boolean()
    started_at = String()
    seconds = Float()
    summary = Dict(keys=String(), values=Integer())
    errors = Integer()
    stale = Integer()
    counts = Dict(keys=String(), values=Integer(), metadata={"description": "problems by kind"})
    problems = List(Nested(ConsistencyProblemOut))
    problems_truncated = Boolean()
    pending = List(Nested(ConsistencyPendingOut), metadata={"description": "ids the reconciler owns right now"})
    users = List(Nested(ConsistencyUserOut))
    users_truncated = Boolean()
