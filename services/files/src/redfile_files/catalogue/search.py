"""The caller's files by folder, name, size or creation time: the filters and sorts of ``GET /files`` (no Flask).

Each sort reads one index of the owner's slot (``storage.listing``): name order the name index
(a folder's range, a subtree's prefix, a substring search over the case-folded names), size order
the size index, creation order the file index.  What a page names is checked against each file's
``meta`` (an entry of an operation in flight is skipped), so a page may be short and still carry a
cursor.  A cursor is the last position read, opaque: files added or removed before it do not shift
the pages after it.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from redfile_common.errors import ApiError
from redfile_files.records import FileRecord
from redfile_files.storage.files import FileStore
from redfile_files.storage.listing import Listings
from redfile_files.storage.records import IndexRow
from redfile_files.validation import ROOT_FOLDER, folder_key, validate_folder

NAME_CALLS = 2  # name index reads per request (each at most SCAN_BUDGET entries): a short page beats a slow one
TYPE_ROUNDS = 4  # with a type filter, pages of the index read per request (then a short page and its cursor)


@dataclass(frozen=True)
class FileQuery:
    folder: str | None = None
    recursive: bool = False
    q: str | None = None
    sort: str | None = None  # name | size | created_at; default: name with a folder or q, else created_at
    order: str | None = None  # asc | desc; default: asc by name, desc otherwise
    min_size: int | None = None
    max_size: int | None = None
    created_after_ms: int | None = None
    created_before_ms: int | None = None
    type: str | None = None  # a MIME type or its prefix: checked on each file's meta, a bounded number of rounds


def _unsupported(what: str) -> ApiError:
    return ApiError("unsupported_query", f"Not supported: {what}.")


def _bad_cursor() -> ApiError:
    return ApiError("validation_error", "The cursor is not valid.", details={"query": {"cursor": ["Not a valid cursor."]}})


def _encode(kind: str, body: str) -> str:
    return base64.urlsafe_b64encode(f"{kind}:{body}".encode()).decode().rstrip("=")


def _decode(cursor: str | None, kind: str) -> str | None:
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("utf-8")
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise _bad_cursor() from None
    found, _, body = raw.partition(":")
    if found != kind or not body:
        raise _bad_cursor()
    return body


def _score_cursor(cursor: str | None, kind: str) -> tuple[int, str] | None:
    body = _decode(cursor, kind)
    if body is None:
        return None
    score, _, member = body.partition(":")
    if not score.isdigit() or len(score) > 20 or not member:
        raise _bad_cursor()
    return int(score), member


class Search:
    """``GET /files`` with filters (see the module docstring)."""

    def __init__(self, listings: Listings, store: FileStore) -> None:
        self.listings = listings
        self.store = store

    def page(self, owner: str, query: FileQuery, *, limit: int, cursor: str | None) -> tuple[list[FileRecord], str | None]:
        folder = validate_folder(query.folder) if query.folder is not None else None
        sort = query.sort or ("name" if folder is not None or query.q else "created_at")
        desc = (query.order or ("asc" if sort == "name" else "desc")) == "desc"
        if sort == "name":
            if query.min_size is not None or query.max_size is not None or query.created_after_ms or query.created_before_ms:
                raise _unsupported("size or time bounds with the name order")
            return self._by_name(owner, folder, query, limit, cursor, desc)
        if folder is not None or query.q:
            raise _unsupported("folder or q with an order other than name")
        if sort == "size":
            if query.created_after_ms or query.created_before_ms:
                raise _unsupported("time bounds with the size order")
            low, high, index, kind = query.min_size or 0, query.max_size, "sizes", "s"
        else:
            if query.min_size is not None or query.max_size is not None:
                raise _unsupported("size bounds with the creation order")
            low, high, index, kind = query.created_after_ms or 0, query.created_before_ms, "files", "c"
        after = _score_cursor(cursor, kind)
        items: list[FileRecord] = []
        for _ in range(TYPE_ROUNDS if query.type else 1):
            ids, after = self.listings.by_score(owner, index, after=after, low=low, high=high, limit=limit - len(items), desc=desc)
            items += [r for r in map(_record, self.store.get_metas(ids)) if r is not None and _kept(r, owner, query.type)]
            if after is None or len(items) >= limit:
                break
        return items, (_encode(kind, f"{after[0]}:{after[1]}") if after else None)

    def _by_name(
        self, owner: str, folder: str | None, query: FileQuery, limit: int, cursor: str | None, desc: bool
    ) -> tuple[list[FileRecord], str | None]:
        after = _decode(cursor, "n")
        if after is not None and IndexRow.of_entry(after) is None:
            raise _bad_cursor()
        prefix, exact = (folder_key(folder), not query.recursive) if folder is not None else (ROOT_FOLDER, False)
        q = query.q.casefold() if query.q else ""
        items: list[FileRecord] = []
        for _ in range(NAME_CALLS * (TYPE_ROUNDS if query.type else 1)):
            found, after = self.listings.by_name(owner, prefix=prefix, exact=exact, after=after, q=q, limit=limit - len(items), desc=desc)
            pairs = [(e, parsed[1]) for e in found if (parsed := IndexRow.of_entry(e)) is not None]
            for (entry, file_id), meta in zip(pairs, self.store.get_metas([i for _, i in pairs])):
                # an entry its meta does not confirm is an operation's in flight: skipped
                if meta is not None and IndexRow.of_meta(meta).entry(file_id) == entry:
                    record = FileRecord.from_meta(meta)
                    if _kept(record, owner, query.type):
                        items.append(record)
            if after is None or len(items) >= limit:
                break
        return items, (_encode("n", after) if after else None)


def _record(meta: dict | None) -> FileRecord | None:
    return FileRecord.from_meta(meta) if meta is not None else None


def _kept(record: FileRecord, owner: str, mime_prefix: str | None) -> bool:
    """The owner's file, of the MIME type asked for (``image`` or ``image/``: any image; ``image/png``: that one)."""
    if record.owner != owner:
        return False
    if not mime_prefix:
        return True
    want = mime_prefix.lower()
    return record.mime_type.lower().startswith(want if "/" in want else want + "/")
