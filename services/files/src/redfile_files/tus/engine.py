"""tus uploads on the upload engine: create, append at an offset, finish, terminate, concatenate.

No Flask here (``tus`` speaks HTTP) and no Redis (``storage``, ``ledger`` and
``tus_store`` do).  A tus upload is an upload of mode ``tus`` with the same
keys, quota reservation, leases, completion and sweep as a session; see
``tus_store`` for how offsets map onto chunks.

* **Create**: as a session: sweep, reserve the length (0 when deferred) with a
  lease, create the upload (fenced), set its due time to its deadline.
  A deferred-length upload (and a final one) reserves as bytes arrive instead.
* **Append** (``PATCH``): the body is cut at chunk boundaries; each piece of
  chunk is sealed and handed to one ``TusStore.append`` (or ``append_later``,
  whose replies are read when the next one goes: ``tus_appender``) that checks
  the offset and advances it.  Without a checksum each chunk is put in place
  as soon as it is full, so a connection cut part-way keeps what arrived; with one, each
  chunk is staged under the request's own keys and all are renamed into place
  by one ``append`` once the checksum matched (a mismatch deletes them: 460,
  nothing changed).
* **Races**: there is no lock.  Two ``PATCH`` requests on one upload at one
  offset both read their bodies; the first ``append`` to run wins and the other
  gets 409 (its offset no longer matches) and can ask for the offset again.
* **Finish**: when the offset reaches the length (and the upload is not a
  partial one) the same ``Uploads.complete`` as sessions use turns it into a
  file; then its tus fields are copied into the file's meta.  A finish that
  fails (or a crash) leaves a whole upload: the next ``HEAD`` or ``PATCH``
  finishes it.
* **Concatenation**: a final upload is an upload in its own slot that lists
  its partials.  No script spans two slots, so its bytes are *copied*: the
  partials' chunks are read (opened and verified), concatenated, re-cut at the
  final's chunk boundaries, sealed under the final's key and appended chunk by
  chunk through the same offset-checked ``append``.  Crash story: each step
  either happened or not; the final's offset says how far the copy got, and
  the partials stay untouched until the final is a file, so the next attempt
  (``HEAD`` on the final, the ``PATCH`` that finishes a partial it waits for)
  resumes at that offset; two attempts at once race step by step like two
  ``PATCH`` requests.  The final reserves its length while the partials still
  hold theirs (the bytes are in Redis twice until the copy ends); once the
  final is a file, each partial not awaited by another final is aborted (its
  reservation returns); a crash before that leaves partials that expire with
  their deadline and are swept like any abandoned upload.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

import structlog

from redfile_common.errors import ApiError
from redfile_files.crypto import ChunkCorrupt
from redfile_files.maintenance.reconcile import US
from redfile_files.records import FileRecord, iso, new_file_id
from redfile_files.storage.files import ChunkMissing, Late
from redfile_files.storage.tus import TUS_MODE, OffsetMismatch, TusStore
from redfile_files.tus.appender import Appender
from redfile_files.tus.protocol import BodyChecksum, Metadata
from redfile_files.uploads.service import _late
from redfile_files.validation import is_file_id, lenient_mime_type, validate_name

log = structlog.get_logger("redfile.files.tus")

COPY_ROUNDS = 20  # attempts at one concatenation when other requests keep racing it


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


@dataclass(frozen=True)
class _Owner:
    username: str
    is_admin: bool = False


def _from_upload(upload_id: str, u: dict) -> TusUpload:
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


def _from_file(file_id: str, meta: dict) -> TusUpload:
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


def _mismatch(offset: int) -> ApiError:
    return ApiError("conflict", "Upload-Offset is not the upload's offset: ask for it (HEAD) and resume there.", details={"offset": offset})


class TusUploads:
    """The tus operations over the files service's engine (``FilesService``)."""

    def __init__(self, files, store: TusStore) -> None:
        self.files = files
        self.store = files.store
        self.ledger = files.ledger
        self.uploads = files.uploads
        self.settings = files.settings
        self.tus = store

    @property
    def max_size(self) -> int:
        return self.settings.max_file_bytes

    # -- reading -----------------------------------------------------------------
    def get(self, owner: str, upload_id: str) -> TusUpload:
        """The owner's tus upload, or the file it became; ``upload_not_found`` otherwise (another user's too)."""
        if not is_file_id(upload_id):
            raise ApiError("upload_not_found")
        snap = self.store.snapshot(upload_id)
        if snap.upload is not None and snap.upload.get("owner") == owner and snap.upload.get("mode") == TUS_MODE:
            return _from_upload(upload_id, snap.upload)
        if snap.meta is not None and snap.meta.get("owner") == owner:
            return _from_file(upload_id, snap.meta)
        raise ApiError("upload_not_found")

    def status(self, owner: str, upload_id: str) -> TusUpload:
        """What ``HEAD`` reports; finishes a whole upload, or a final whose partials are all done, on the way."""
        up = self.get(owner, upload_id)
        if up.finished:
            return up
        if up.is_final:
            return self._concatenate(owner, up.id)
        if up.complete and not up.is_partial:
            return self._finish(owner, up)
        return up

    def record(self, owner: str, upload_id: str) -> FileRecord:
        """The file a finished upload became (``GET``); 409 while it is not finished."""
        if not self.status(owner, upload_id).finished:
            raise ApiError("conflict", "The upload is not finished yet.")
        return self.files.get_file(None, upload_id)

    # -- creation ----------------------------------------------------------------
    def create(self, owner: str, *, length: int | None, metadata: Metadata, concat: str = "") -> TusUpload:
        """A new upload of ``length`` bytes (None: deferred); a zero-length one is a file at once."""
        if length is not None and length > self.max_size:
            raise ApiError("payload_too_large", "Upload-Length is over Tus-Max-Size.", details={"max_file_bytes": self.max_size})
        up = self._create(owner, length=length, metadata=metadata, concat=concat)
        if length == 0 and not up.is_partial:
            return self._finish(owner, up)
        return up

    def create_final(self, owner: str, *, concat: str, parts: tuple[str, ...], metadata: Metadata) -> TusUpload:
        """A final upload of ``parts`` (partial uploads of ``owner``): concatenated now if they are all done."""
        partials = [self._partial(owner, pid) for pid in parts]
        done = all(p.complete for p in partials)
        length = sum(p.length for p in partials) if done else None
        if length is not None and length > self.max_size:
            raise ApiError(
                "payload_too_large", "The partial uploads add up to more than Tus-Max-Size.", details={"max_file_bytes": self.max_size}
            )
        final = self._create(owner, length=length, metadata=metadata, concat=concat, parts=parts)
        if not done:
            for pid in dict.fromkeys(parts):  # the partial's last PATCH will find the final
                self.tus.link_final(pid, final.id)
        try:
            return self._concatenate(owner, final.id)
        except Exception:
            if done:  # nobody has the final's URL yet: take it back
                self.terminate_quietly(owner, final.id)
            raise

    def _create(self, owner: str, *, length: int | None, metadata: Metadata, concat: str, parts: tuple[str, ...] = ()) -> TusUpload:
        upload_id = new_file_id()
        name = metadata.text("filename", "name")
        name = validate_name(name, self.settings.max_name_bytes) if name is not None else f"upload-{upload_id[:8]}"
        mime_type = lenient_mime_type(metadata.text("filetype", "type", "content-type"))
        files = self.files
        files.reconciler.sweep_user(owner)
        now = iso(files.clock())
        chunk_size = self.settings.chunk_bytes
        lease = self._reserve(owner, upload_id, length or 0, new=True, lease=True)
        self.ledger.upload_started(upload_id, int(files.clock() * 1000))
        fields = {
            "owner": owner,
            "mode": TUS_MODE,
            "total_chunks": math.ceil((length or 0) / chunk_size),
            "total_size": "" if length is None else length,
            "chunk_size": chunk_size,
            "name": name,
            "mime_type": mime_type,
            "sha256": "",
            "file_expires": "",
            "dek": files.encryption.new_wrapped_key(upload_id),
            "created_at": now,
            "updated_at": now,
            "tus_metadata": metadata.raw,
            "tus_concat": concat,
            "tus_parts": " ".join(parts),
        }
        try:
            deadline = self.store.create_upload(upload_id, fields, not_after_us=lease.fence)
        except Late:
            raise _late() from None
        self.ledger.apply(owner, upload_id, expected=lease.score, held=f"r>={length or 0}", index_ms=None, due_us=deadline * US)
        files.metrics.upload_started()
        log.info("tus_upload_created", upload_id=upload_id, owner=owner, length=length, concat=concat.split(";")[0] or None)
        return _from_upload(upload_id, {k: str(v) for k, v in fields.items()} | {"received_bytes": "0", "deadline": str(deadline)})

    def _reserve(self, owner: str, upload_id: str, size: int, **kwargs):
        """``Ledger.reserve``, a refusal over the quota counted."""
        try:
            return self.ledger.reserve(owner, upload_id, size, **kwargs)
        except ApiError as exc:
            if exc.code == "quota_exceeded":
                self.files.metrics.quota_rejection()
            raise

    # -- appending ---------------------------------------------------------------
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
        """Apply ``body`` at ``offset`` (``PATCH``); ``length`` sets a deferred length.  See the module docstring."""
        up = self.get(owner, upload_id)
        if up.is_final:
            raise ApiError("forbidden", "A final upload is made by concatenation; it takes no PATCH.")
        if up.finished:  # a retried last PATCH: nothing more can go in
            if offset != up.offset:
                raise _mismatch(up.offset)
            if content_length or length not in (None, up.length):
                raise ApiError("payload_too_large", "The upload is finished.", details={"upload_length": up.length})
            return up
        if up.offset != offset:
            raise _mismatch(up.offset)
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
        writer = Appender(
            self, owner, up, length=length, staged=checksum is not None, reserve=up.length is None, limit=limit, body_length=content_length
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
            raise _mismatch(exc.offset) from None
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
            self.files.metrics.checksum_failure("client")
            raise ApiError("checksum_mismatch", "The body does not match Upload-Checksum; nothing was stored.", status=460)
        try:
            writer.finish()
        except OffsetMismatch as exc:
            raise _mismatch(exc.offset) from None
        finally:
            writer.abandon()
        up = replace(up, offset=writer.offset, length=up.length if up.length is not None else length, expires=writer.deadline or up.expires)
        if up.complete and up.is_partial:
            self._wake_finals(owner, up)
        elif up.complete:
            return self._finish(owner, up)
        return up

    # -- finishing, terminating ------------------------------------------------------
    def _finish(self, owner: str, up: TusUpload) -> TusUpload:
        """Turn a whole upload into a file (the sessions' completion); idempotent."""
        try:
            self.uploads.complete(owner, up.id)
        except ApiError:
            meta = self.store.get_meta(up.id)  # another request may have finished it meanwhile
            if meta is None or meta["owner"] != owner:
                raise
        annotations = {k: v for k, v in (("tus_metadata", up.metadata), ("tus_concat", up.concat)) if v}
        if annotations:
            self.tus.annotate_file(up.id, annotations)
        return self.get(owner, up.id)

    def terminate(self, owner: str, upload_id: str) -> None:
        """``DELETE``: abort an unfinished upload (its reservation returns), or delete the file it became."""
        for _ in range(3):  # it may become a file between the read and the abort
            up = self.get(owner, upload_id)
            try:
                if up.finished:
                    self.files.delete(_Owner(owner), upload_id)
                else:
                    self.uploads.abort(owner, upload_id)
                return
            except ApiError as exc:
                if exc.code not in ("upload_not_found", "file_not_found"):
                    raise
        raise ApiError("upload_not_found")

    def terminate_quietly(self, owner: str, upload_id: str) -> None:
        """Abort an upload nobody will use (a failed creation, a concatenated partial); gone already is fine."""
        try:
            self.uploads.abort(owner, upload_id)
        except ApiError as exc:
            if exc.code != "upload_not_found":
                log.warning("tus_abort_failed", upload_id=upload_id, code=exc.code)
        except Exception as exc:
            log.warning("tus_abort_failed", upload_id=upload_id, error_type=type(exc).__name__)

    # -- concatenation -------------------------------------------------------------
    def _partial(self, owner: str, partial_id: str) -> TusUpload:
        try:
            up = self.get(owner, partial_id)
        except ApiError:
            raise ApiError(
                "upload_not_found",
                "A partial upload named in Upload-Concat does not exist (or is not yours).",
                details={"upload_id": partial_id},
            ) from None
        if up.finished or not up.is_partial:
            raise ApiError("bad_request", "Upload-Concat names an upload that is not a partial one.", details={"upload_id": partial_id})
        return up

    def _wake_finals(self, owner: str, partial: TusUpload) -> None:
        """A partial is done: try each final waiting for it (a failure is left for the final's next HEAD)."""
        for final_id in partial.finals:
            try:
                self._concatenate(owner, final_id)
            except ApiError as exc:
                log.info("tus_final_not_ready", final_id=final_id, code=exc.code)
            except Exception as exc:
                log.warning("tus_final_not_ready", final_id=final_id, error_type=type(exc).__name__)

    def _concatenate(self, owner: str, final_id: str) -> TusUpload:
        """Copy the partials into the final, resuming at its offset, then finish it; see the module docstring."""
        final = self.get(owner, final_id)
        if final.finished:
            return final
        try:
            partials = [self._partial(owner, pid) for pid in final.parts]
        except ApiError as exc:
            raise ApiError(
                "conflict", "A partial upload of this final upload no longer exists; terminate it and start again.", details=exc.details
            ) from None
        if not all(p.complete for p in partials):
            known = all(p.length is not None for p in partials)
            return replace(final, offset=None, length=sum(p.length for p in partials) if known else None)
        total = sum(p.length for p in partials)
        parts = final.parts
        if final.length is None:
            self._claim_length(owner, final, total)
        elif final.length != total:
            raise ApiError("conflict", "The partial uploads no longer add up to the final upload's length.")
        for _ in range(COPY_ROUNDS):
            final = self.get(owner, final_id)
            if final.finished or final.offset >= total:
                break
            writer = Appender(self, owner, final, length=None, staged=False, reserve=False, limit=total - final.offset, allow_final=True)
            try:
                for piece in self._read_concatenation(owner, partials, final.offset):
                    writer.feed(piece)
                writer.finish()
            except OffsetMismatch:
                continue  # another request is copying too: resume at the offset it reached
            except ApiError:
                if self.get(owner, final_id).finished:
                    break  # another request finished the copy (and removed the partials) under our feet
                raise
            break
        else:
            raise ApiError("conflict", "The final upload is being concatenated by other requests; ask again.")
        current = self.get(owner, final_id)
        result = current if current.finished else self._finish(owner, current)
        for p in dict.fromkeys(parts):
            if not [f for f in self._finals_of(owner, p) if f != final_id]:
                self.terminate_quietly(owner, p)
        log.info("tus_concatenated", final_id=final_id, owner=owner, parts=len(parts), size=total)
        return result

    def _finals_of(self, owner: str, partial_id: str) -> tuple[str, ...]:
        try:
            return self.get(owner, partial_id).finals
        except ApiError:
            return ()

    def _claim_length(self, owner: str, final: TusUpload, total: int) -> None:
        """Reserve the final's length, then set it; give the bytes back when another request set it first."""
        self._reserve(owner, final.id, total, new=False)
        try:
            claimed = self.tus.append(
                final.id,
                owner=owner,
                expected=final.offset,
                new_offset=final.offset,
                segments=[],
                now_iso=iso(self.files.clock()),
                length=total,
                allow_final=True,
            ).length_set
        except BaseException:
            self.ledger.shrink(owner, final.id, total)
            raise
        if not claimed:
            self.ledger.shrink(owner, final.id, total)

    def _read_concatenation(self, owner: str, partials: list[TusUpload], start: int) -> Iterator[bytes]:
        """The partials' bytes end to end from ``start``, each chunk opened and verified."""
        base = 0
        for p in partials:
            if start < base + p.length:
                record = FileRecord(
                    id=p.id,
                    name="",
                    size=p.length,
                    owner=owner,
                    created_at="",
                    updated_at="",
                    mime_type="",
                    sha256="",
                    kind="file",
                    total_chunks=math.ceil(p.length / p.chunk_size),
                    chunk_size=p.chunk_size,
                    dek=p.dek,
                )
                try:
                    yield from self.files.read_chunks(record, max(0, start - base), p.length)
                except (ChunkMissing, ChunkCorrupt) as exc:
                    log.error("tus_partial_unreadable", upload_id=p.id, chunk_index=exc.index)
                    raise ApiError("stored_data_corrupt", details={"upload_id": p.id, "chunk_index": exc.index}) from None
            base += p.length
