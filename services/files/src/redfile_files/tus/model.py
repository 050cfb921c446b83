"""A tus upload as the protocol sees it, read from the upload hash or from the file it became."""

from __future__ import annotations

from dataclasses import dataclass

from redfile_common.errors import ApiError


class BodyInterrupted(Exception):
    """The request body ended before all of it arrived (the connection was cut)."""


@dataclass(frozen=True)
class TusUpload:
    id: str
    owner: str
    offset: int | None  # None: a final upload whose concatenation has not finished
    length: int | None  # None: deferred (or a final whose partials' lengths are not all known)
    metadata: str = ""  # Upload-Metadata, normalised
    concat: str = ""  # "", "partial" or "final;<urls>"
    parts: tuple[str, ...] = ()  # a final's partial ids
    finals: tuple[str, ...] = ()  # on a partial: finals waiting for it
    expires: int | None = None  # unix s: when an unfinished upload expires
    finished: bool = False  # it is a file now
    chunk_size: int = 0
    dek: str = ""

    @property
    def is_partial(self) -> bool:
        return self.concat == "partial"

    @property
    def is_final(self) -> bool:
        return self.concat.startswith("final")

    @property
    def complete(self) -> bool:
        return self.length is not None and self.offset == self.length

    @property
    def at(self) -> int:
        """The offset of an upload that has one (every upload but an unfinished final)."""
        assert self.offset is not None
        return self.offset


def from_upload(upload_id: str, u: dict[str, str]) -> TusUpload:
    """From an upload hash's fields (as text)."""
    length = u.get("total_size") or ""
    return TusUpload(
        id=upload_id,
        owner=u["owner"],
        offset=int(u.get("received_bytes") or 0),
        length=int(length) if length else None,
        metadata=u.get("tus_metadata", ""),
        concat=u.get("tus_concat", ""),
        parts=tuple(u.get("tus_parts", "").split()),
        finals=tuple(sorted(k.split(":", 1)[1] for k in u if k.startswith("tus_final:"))),
        expires=int(u.get("deadline") or 0) or None,
        chunk_size=int(u.get("chunk_size") or 0),
        dek=u.get("dek", ""),
    )


def from_file(file_id: str, meta: dict) -> TusUpload:
    """From the meta of the file a finished upload became."""
    return TusUpload(
        id=file_id,
        owner=meta["owner"],
        offset=meta["size"],
        length=meta["size"],
        metadata=meta.get("tus_metadata", ""),
        concat=meta.get("tus_concat", ""),
        finished=True,
        chunk_size=meta.get("chunk_size", 0),
        dek=meta.get("dek", ""),
    )


def mismatch(offset: int | None) -> ApiError:
    return ApiError("conflict", "Upload-Offset is not the upload's offset: ask for it (HEAD) and resume there.", details={"offset": offset})
