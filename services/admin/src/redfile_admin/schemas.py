"""Request and response schemas of the admin API (they also produce /admin/openapi.json).

Inputs are checked for shape only (types, required fields, known roles,
sane lengths); the rules about what a username or password may be belong to
auth, whose 4xx answers pass through unchanged.
"""

from __future__ import annotations

from typing import Any

from apiflask import Schema
from apiflask.fields import Boolean, DateTime, Dict, Float, Integer, List, Nested, String
from apiflask.validators import Length, OneOf, Range, Regexp
from marshmallow import ValidationError, validates_schema

from redfile_common.fields import MAX_SAFE_INTEGER, JsonInteger, StrictBoolean, password, username

ROLES = ("admin", "user")
MAX_PAGE = 200


def _username(**options: Any) -> String:
    return username("The account's name (case-insensitive).", validate=Length(min=1, max=64), **options)


# -- inputs ------------------------------------------------------------------


class UserCreateIn(Schema):
    username = _username(required=True)
    password = password(required=True, load_only=True, validate=Length(min=1, max=1024))
    role = String(load_default="user", validate=OneOf(ROLES))


class RoleChangeIn(Schema):
    username = _username(required=True)
    role = String(required=True, validate=OneOf(ROLES))


class UserPatchIn(Schema):
    active = StrictBoolean(metadata={"description": "false disables the account, true enables it."})
    password = password("A new password.", load_only=True, validate=Length(min=1, max=1024))
    role = String(validate=OneOf(ROLES))

    @validates_schema
    def _not_empty(self, data, **kwargs):
        if not data:
            raise ValidationError("Give at least one of active, password, role.", field_name="_schema")


class QuotaIn(Schema):
    quota_bytes = JsonInteger(
        required=True,
        allow_none=True,
        validate=Range(min=0, max=MAX_SAFE_INTEGER),
        metadata={"description": "Bytes the user may hold (files and uploads in progress); null: the files service's default."},
    )
    max_file_bytes = JsonInteger(
        load_default=None,
        allow_none=True,
        validate=Range(min=1, max=MAX_SAFE_INTEGER),
        metadata={"description": "The user's largest file; null: the files service's default."},
    )


class PageQuery(Schema):
    limit = Integer(validate=Range(min=1, max=MAX_PAGE), metadata={"description": "Page size, 1-200 (default 50)."})
    cursor = String(validate=Length(min=1, max=512), metadata={"description": "next_cursor of the previous page."})


class FileListQuery(PageQuery):
    owner = String(validate=Length(min=1, max=64), metadata={"description": "Only this account's files (a filter: any name)."})


# -- outputs (the user and file shapes of docs/contracts.md) --------------------


class UserOut(Schema):
    username = String()
    role = String(metadata={"enum": list(ROLES)})
    active = Boolean()
    created_at = String(metadata={"format": "date-time"})
    updated_at = String(metadata={"format": "date-time"})


class UserPage(Schema):
    items = List(Nested(UserOut))
    next_cursor = String(allow_none=True)


class FileOut(Schema):
    id = String()
    name = String()
    size = Integer()
    owner = String()
    created_at = String(metadata={"format": "date-time"})
    updated_at = String(metadata={"format": "date-time"})
    mime_type = String()
    sha256 = String(allow_none=True, metadata={"description": "null unless the upload declared or asked for it (see the files service)"})
    kind = String(metadata={"enum": ["file", "text"]})


class QuotaOut(Schema):
    username = String()
    quota_bytes = Integer()
    max_file_bytes = Integer()
    used_bytes = Integer(metadata={"description": "Stored files (and ones being completed)."})
    reserved_bytes = Integer(metadata={"description": "Reserved by uploads in progress."})
    available_bytes = Integer()
    quota_is_default = Boolean()
    max_file_is_default = Boolean()


class FilePage(Schema):
    items = List(Nested(FileOut))
    next_cursor = String(allow_none=True)


# -- operations views: stats, usage, the audit trail ------------------------------


class UsersStats(Schema):
    total = Integer(metadata={"description": "Accounts, enabled or not."})


class FilesStats(Schema):
    files = Integer(metadata={"description": "Stored files and texts."})
    bytes_stored = Integer(metadata={"description": "Their bytes (uploads in progress not included)."})
    active_uploads = Integer(metadata={"description": "Chunked uploads in progress."})


class RedisPersistence(Schema):
    loading = Boolean()
    aof_enabled = Boolean()
    aof_last_write_ok = Boolean()
    aof_rewrite_in_progress = Boolean()
    rdb_last_bgsave_ok = Boolean()
    rdb_changes_since_last_save = Integer()
    rdb_last_save_time = String(allow_none=True, metadata={"format": "date-time"})


class RedisStats(Schema):
    up = Boolean(metadata={"description": "false: INFO could not be read (the other fields are then absent)."})
    version = String()
    used_memory_bytes = Integer()
    maxmemory_bytes = Integer(metadata={"description": "0: no limit."})
    memory_used_ratio = Float(allow_none=True, metadata={"description": "used / maxmemory; null without a limit."})
    maxmemory_policy = String()
    connected_clients = Integer()
    persistence = Nested(RedisPersistence)


class StatsOut(Schema):
    users = Nested(UsersStats, allow_none=True, metadata={"description": "null when auth did not answer."})
    files = Nested(FilesStats, allow_none=True, metadata={"description": "null when files did not answer."})
    redis = Nested(RedisStats)
    unavailable = List(String(), metadata={"description": "The parts that could not be read: auth, files, redis."})


class UsageOut(FilesStats):
    username = String()
    quota = Nested(QuotaOut)


class ConsistencyQuery(Schema):
    deep = Boolean(
        load_default=False,
        metadata={
            "description": "also read every file's bytes and check them against its CRC32C and composite (and SHA-256, when it has one)"
        },
    )
    strict = Boolean(load_default=False, metadata={"description": "stale links/inbox entries fail the check too"})


class ConsistencyProblemOut(Schema):
    kind = String(metadata={"description": "what is wrong (docs/operations.md lists every kind)"})
    severity = String(metadata={"enum": ["error", "stale"]})
    key = String(metadata={"description": "the Redis key concerned"})
    detail = String()
    id = String(allow_none=True, metadata={"description": "the file or upload id concerned"})
    user = String(allow_none=True)


class ConsistencyPendingOut(Schema):
    id = String()
    user = String(allow_none=True)
    reason = String(
        metadata={
            "enum": ["due", "leased", "active"],
            "description": "due: the next sweep repairs it; leased: an operation is in flight; active: an upload changed while it was read",
        }
    )
    issues = List(String())


class ConsistencyUserOut(Schema):
    user = String()
    used = Integer(metadata={"description": "the quota's used bytes"})
    charged = Integer(metadata={"description": "the sum of the user's charges"})
    files = Integer()
    files_bytes = Integer(metadata={"description": "the sum of their files' sizes"})
    reserved = Integer(metadata={"description": "the quota's reserved bytes"})
    reservations = Integer(metadata={"description": "the sum of the user's reservations"})
    uploads = Integer(metadata={"description": "uploads in progress"})
    uploads_min_bytes = Integer(metadata={"description": "what those uploads must at least hold reserved"})
    ok = Boolean()


class ConsistencyOut(Schema):
    ok = Boolean(metadata={"description": "the walk finished and found no error (with strict: no stale entry either)"})
    complete = Boolean(metadata={"description": "false: the walk ran out of time; run redfile-check in a files pod"})
    deep = Boolean()
    strict = Boolean()
    started_at = String(metadata={"format": "date-time"})
    seconds = Float()
    summary = Dict(keys=String(), values=Integer(), metadata={"description": "keys, files, uploads, users, shares, chunks, bytes, pending"})
    errors = Integer()
    stale = Integer()
    counts = Dict(keys=String(), values=Integer(), metadata={"description": "problems by kind"})
    problems = List(Nested(ConsistencyProblemOut), metadata={"description": "the first 1,000, each confirmed by a second look"})
    problems_truncated = Boolean()
    pending = List(Nested(ConsistencyPendingOut), metadata={"description": "ids the reconciler owns right now: not problems"})
    users = List(Nested(ConsistencyUserOut), metadata={"description": "per user, those with problems first; at most 1,000"})
    users_truncated = Boolean()


class AuditQuery(PageQuery):
    user = String(validate=Length(min=1, max=64), metadata={"description": "Entries whose actor or subject is this user."})
    action = String(
        validate=Regexp(r"^[a-z_]+(\.[a-z_]+)?$"), metadata={"description": "An action (login.failed) or a family of them (login)."}
    )
    since = DateTime(metadata={"description": "Entries at or after this time (ISO 8601)."})
    until = DateTime(metadata={"description": "Entries at or before this time (ISO 8601)."})


class AuditEntryOut(Schema):
    id = String(metadata={"description": "The stream entry id; entries are ordered by it."})
    time = String(metadata={"format": "date-time"})
    action = String()
    service = String(metadata={"description": "The service that wrote the entry."})
    actor = String(metadata={"description": "Who acted: a username, or system."})
    user = String(allow_none=True, metadata={"description": "The account concerned."})
    target = String(allow_none=True, metadata={"description": "What was acted on: a username, a file id, ..."})
    outcome = String(metadata={"enum": ["success", "failure", "denied"]})
    request_id = String(allow_none=True)
    remote = String(allow_none=True, metadata={"description": "The client's address."})
    details = Dict()


class AuditPage(Schema):
    items = List(Nested(AuditEntryOut))
    next_cursor = String(allow_none=True)
