"""What the consistency check can find: each kind of problem, its severity and meaning (docs/operations.md lists them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

ERROR, STALE = "error", "stale"

# kind -> (severity, what it means)
KINDS = {
    "unknown_key": (ERROR, "a files:* key of no known family"),
    "wrong_type": (ERROR, "a key of a known family holds another Redis type"),
    "file_record_incomplete": (ERROR, "a file's meta lacks a field or holds a bad value"),
    "file_and_upload": (ERROR, "an id is a file and an upload at once"),
    "chunk_table_mismatch": (ERROR, "a chunk table has parts missing, extra or unreadable"),
    "chunk_missing": (ERROR, "a chunk listed in the chunk table is not stored"),
    "chunk_size_wrong": (ERROR, "a stored chunk's length is not its part's size (+28 sealed), or the chunk size rule is broken"),
    "size_mismatch": (ERROR, "the parts do not add up to the file's size (an upload's received_bytes)"),
    "checksum_record_mismatch": (ERROR, "the composite checksum does not match the chunk table"),
    "data_corrupt": (ERROR, "deep: the stored bytes fail their checks or do not match the file's CRC32C, composite or SHA-256"),
    "key_expiry_wrong": (ERROR, "a key of a permanent file expires, or one of an upload does not"),
    "file_not_charged": (ERROR, "a file is not charged to its owner with its size"),
    "file_not_indexed": (ERROR, "a file is missing from its owner's index or the global index, or its global size differs"),
    "due_missing": (ERROR, "an upload or expiring file has no due entry: the sweep would never release it"),
    "upload_record_incomplete": (ERROR, "an upload's record lacks a field or holds a bad value"),
    "upload_not_reserved": (ERROR, "an upload's owner holds less than the reconciler keeps reserved for it"),
    "upload_indexed": (ERROR, "an upload is in a file index"),
    "upload_not_counted": (ERROR, "an upload is missing from files:{all}:uploads"),
    "orphan_key": (ERROR, "a key of an id that is neither file nor upload, a chunk outside its table, or a staging key without TTL"),
    "orphan_share": (ERROR, "a share (or a file's share or recipient list) of a file that does not exist"),
    "share_record_invalid": (ERROR, "a share's record does not match its key or its file"),
    "share_not_listed": (ERROR, "a share is not in its file's shares list (a delete would not remove it)"),
    "share_link_missing": (ERROR, "a share's token lookup is missing or points elsewhere"),
    "share_not_in_owner_links": (ERROR, "a share is not in its owner's links (they cannot see or revoke it)"),
    "recipient_not_in_inbox": (ERROR, "a recipient of a file does not have it in their inbox"),
    "dangling_share_entry": (ERROR, "a file's shares list names a share that does not exist"),
    "orphan_link": (ERROR, "a token lookup of a share that does not exist, or a password counter without TTL"),
    "usage_drift": (ERROR, "a user's quota.used is not the sum of their charges"),
    "reservation_drift": (ERROR, "a user's quota.reserved is not the sum of their reservations"),
    "holding_invalid": (ERROR, "a holding is not r:<n> or c:<n>"),
    "dangling_holding": (ERROR, "a user holds bytes for an id that is neither their file nor their upload"),
    "index_without_charge": (ERROR, "a user's index lists an id they are not charged for"),
    "orphan_due": (ERROR, "a due entry of an id that the user neither holds nor owns"),
    "dangling_index_entry": (ERROR, "the global index lists an id that is not a file"),
    "size_without_index": (ERROR, "files:{all}:sizes holds an id that is not indexed"),
    "global_bytes_drift": (ERROR, "files:{all}:bytes is not the sum of files:{all}:sizes"),
    "upload_count_stale": (ERROR, "files:{all}:uploads lists an id that is no upload in progress"),
    "bad_value": (ERROR, "a counter, lock or cursor holds a bad value or never expires"),
    "stale_name_entry": (ERROR, "a user's name index holds an entry no file's meta confirms and no operation has in flight"),
    "stale_size_entry": (ERROR, "a user's size index holds an id that is not in their file index"),
    "stale_index_row": (ERROR, "a row in flight of an id with no operation in flight that is not an expiring file"),
    "stale_link_entry": (STALE, "a user's links index names a share that is gone (dropped when they list)"),
    "stale_inbox_entry": (STALE, "a user's inbox names a file no longer shared with them (dropped when they list)"),
}

# What the reconciler sets right for an id (not upload_not_counted: an upload enters files:{all}:uploads
# only when it is created, so that a finished one is never counted again).
RECONCILED = frozenset(
    {
        "file_not_charged",
        "file_not_indexed",
        "due_missing",
        "upload_not_reserved",
        "upload_indexed",
        "dangling_holding",
        "index_without_charge",
        "orphan_due",
        "stale_size_entry",
        "stale_index_row",
    }
)
REPAIRABLE = RECONCILED | {
    "dangling_index_entry",
    "size_without_index",
    "upload_count_stale",
    "stale_link_entry",
    "stale_inbox_entry",
    "orphan_share",
    "stale_name_entry",
}


class Target(NamedTuple):
    """What to look at again to confirm a problem: a key (``exists``), a file, an upload, a share, a link's token
    hash, a user, or the global slot."""

    what: str
    arg: object = None


@dataclass
class Problem:
    kind: str
    key: str
    detail: str
    id: str | None = None
    user: str | None = None
    share_id: str | None = None  # the share the problem is about (repairs act on it)
    entry: str | None = None  # the name index entry the problem is about (repairs act on it)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"unknown problem kind {self.kind!r}")

    @property
    def severity(self) -> str:
        return KINDS[self.kind][0]

    def public(self) -> dict:
        """As the report lists it."""
        return {"kind": self.kind, "key": self.key, "detail": self.detail, "id": self.id, "user": self.user, "severity": self.severity}
