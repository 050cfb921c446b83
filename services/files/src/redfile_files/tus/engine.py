"""tus uploads, without HTTP: what ``HEAD``, ``POST``, ``PATCH``, ``GET`` and ``DELETE`` do (``tus/http.py`` speaks HTTP).

A ``PATCH`` body is cut at chunk boundaries (``Appender``).  Without ``Upload-Checksum`` each chunk goes
in as soon as it is full, so a connection cut part-way keeps what arrived (tus asks for that); with
one, every chunk is staged under the request's own keys and one append puts them all in place
after the checksum matched (a mismatch deletes them: 460, nothing changed).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from redfile_common.errors import ApiError
from redfile_files.records import FileRecord
from redfile_files.storage.records import OffsetMismatch
from redfile_files.tus.concat import Concatenation
from redfile_files.tus.core import TusCore
from redfile_files.tus.model import BodyInterrupted, TusUpload, mismatch
from redfile_files.tus.protocol import BodyChecksum, Metadata


class TusUploads:
    """The tus operations over the upload engine."""

    def __init__(self, core: TusCore) -> None:
        self.core = core
        self.concat = Concatenation(core)
        self.settings = core.settings
        self.reader = core.reader

    @property
    def max_size(self) -> int:
        return self.core.max_size

    def get(self, owner: str, upload_id: str) -> TusUpload:
        return self.core.get(owner, upload_id)

    def status(self, owner: str, upload_id: str) -> TusUpload:
        """What ``HEAD`` reports; finishes a whole upload, or a final whose partials are all done, on the way."""
        up = self.core.get(owner, upload_id)
        if up.finished:
            return up
        if up.is_final:
            return self.concat.concatenate(owner, up.id)
        if up.complete and not up.is_partial:
            return self.core.finish(owner, up)
        return up

    def record(self, owner: str, upload_id: str) -> FileRecord:
        """The file a finished upload became (``GET``); 409 while it is not finished."""
        if not self.status(owner, upload_id).finished:
            raise ApiError("conflict", "The upload is not finished yet.")
        return self.core.catalogue.get_file(None, upload_id)

    def _moved_on(self, owner: str, upload_id: str, refused: ApiError) -> ApiError:
        """An append refused as ``upload_not_found`` because a racing PATCH made the upload a file meanwhile:
        409 at the file's offset, as a PATCH arriving after it gets."""
        if refused.code != "upload_not_found":
            return refused
        try:
            now = self.core.get(owner, upload_id)
        except ApiError:
            return refused
        return mismatch(now.offset)

    def create(self, owner: str, *, length: int | None, metadata: Metadata, concat: str = "") -> TusUpload:
        """A new upload of ``length`` bytes (None: deferred); a zero-length one is a file at once."""
        if length is not None and length > self.max_size:
            raise ApiError("payload_too_large", "Upload-Length is over Tus-Max-Size.", details={"max_file_bytes": self.max_size})
        up = self.core.create(owner, length=length, metadata=metadata, concat=concat)
        if length == 0 and not up.is_partial:
            return self.core.finish(owner, up)
        return up

    def create_final(self, owner: str, *, concat: str, parts: tuple[str, ...], metadata: Metadata) -> TusUpload:
        return self.concat.create_final(owner, concat=concat, parts=parts, metadata=metadata)

    def terminate(self, owner: str, upload_id: str) -> None:
        self.core.terminate(owner, upload_id)

    def terminate_quietly(self, owner: str, upload_id: str) -> None:
        self.core.terminate_quietly(owner, upload_id)

    def append(
        self,
        owner: str,
        upload_id: str,
        *,
        offset: int,
        body: Iterable[bytes],
        length: int | None = None,
        checksum: BodyChecksum | None = None,
        content_length: int | None = None,
    ) -> TusUpload:
        """Apply ``body`` at ``offset`` (``PATCH``); ``length`` sets a deferred length."""
        up = self.core.get(owner, upload_id)
        if up.is_final:
            raise ApiError("forbidden", "A final upload is made by concatenation; it takes no PATCH.")
        if up.finished:  # a retried last PATCH: nothing more can go in
            if offset != up.offset:
                raise mismatch(up.offset)
            if content_length or length not in (None, up.length):
                raise ApiError("payload_too_large", "The upload is finished.", details={"upload_length": up.length})
            return up
        if up.offset != offset:
            raise mismatch(up.offset)
        if length is not None:
            if up.length is not None and length != up.length:
                raise ApiError("bad_request", "Upload-Length was already set and cannot change.", details={"upload_length": up.length})
            if length > self.max_size:
                raise ApiError("payload_too_large", "Upload-Length is over Tus-Max-Size.", details={"max_file_bytes": self.max_size})
            if length < offset:
                raise ApiError("bad_request", "Upload-Length is less than the upload's offset.", details={"offset": offset})
        limit = (up.length if up.length is not None else length if length is not None else self.max_size) - offset
        if content_length is not None and content_length > limit:
            raise ApiError("payload_too_large", "The body would go past the upload's length.", details={"remaining": limit})
        writer = self.core.appender(
            owner, up, length=length, staged=checksum is not None, reserve=up.length is None, limit=limit, body_length=content_length
        )
        try:
            for piece in body:
                if checksum is not None:
                    checksum.update(piece)
                writer.feed(piece)
        except BodyInterrupted:
            try:
                if checksum is None:  # keep what arrived (tus: store as much as possible)
                    writer.finish()
            except (ApiError, OffsetMismatch):
                pass
            finally:  # whatever finish raised: no SET left open, no append left unread
                writer.abandon()
            raise
        except OffsetMismatch as exc:
            writer.abandon()
            raise mismatch(exc.offset) from None
        except ApiError as exc:
            writer.abandon()
            raise self._moved_on(owner, up.id, exc) from None
        except BaseException:
            writer.abandon()
            raise
        try:
            matches = checksum is None or checksum.matches()
        except BaseException:  # a trailer that did not come, or is malformed
            writer.abandon()
            raise
        if not matches:
            writer.abandon()
            self.core.metrics.checksum_failure("client")
            raise ApiError("checksum_mismatch", "The body does not match Upload-Checksum; nothing was stored.", status=460)
        try:
            writer.finish()
        except OffsetMismatch as exc:
            raise mismatch(exc.offset) from None
        except ApiError as exc:
            raise self._moved_on(owner, up.id, exc) from None
        finally:
            writer.abandon()
        up = replace(up, offset=writer.offset, length=up.length if up.length is not None else length, expires=writer.deadline or up.expires)
        if up.complete and up.is_partial:
            self.concat.wake_finals(owner, up)
        elif up.complete:
            return self.core.finish(owner, up)
        return up
