"""tus concatenation: a final upload made of partial ones, copied across slots.

A final upload lives in its own slot and lists its partials' ids; no script spans two slots, so its
bytes are copied: the partials' chunks are read (opened and verified), cut at the final's chunk
boundaries, sealed under the final's data key and appended by the same offset-checked append, one
chunk at a time; then the final is completed like any upload and the partials (unless another final
waits for one) are aborted.  Each step either happened or not and the final's offset says how far
the copy got, so a crash or a lost race is resumed at that offset by the next attempt: the ``HEAD``
on the final, or the ``PATCH`` that finishes the last partial it waits for (the final is recorded
on each unfinished partial, and re-checks its partials after recording it, so one of the two sees
the other).  While the copy runs the bytes are held twice (the partials' reservations and the
final's).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import replace

import structlog

from redfile_common.errors import ApiError
from redfile_files.crypto import ChunkCorrupt
from redfile_files.records import FileRecord, iso
from redfile_files.storage.records import ChunkMissing, OffsetMismatch
from redfile_files.tus.core import TusCore
from redfile_files.tus.model import TusUpload
from redfile_files.tus.protocol import Metadata

log = structlog.get_logger("redfile.files.tus")

COPY_ROUNDS = 20  # attempts at one concatenation when other requests keep racing it


class Concatenation:
    def __init__(self, core: TusCore) -> None:
        self.core = core

    def create_final(self, owner: str, *, concat: str, parts: tuple[str, ...], metadata: Metadata) -> TusUpload:
        """A final upload of ``parts`` (partial uploads of ``owner``): concatenated now if they are all done."""
        core = self.core
        partials = [self.partial(owner, pid) for pid in parts]
        done = all(p.complete for p in partials)
        length = sum(p.length or 0 for p in partials) if done else None
        if length is not None and length > core.max_size:
            raise ApiError(
                "payload_too_large", "The partial uploads add up to more than Tus-Max-Size.", details={"max_file_bytes": core.max_size}
            )
        final = core.create(owner, length=length, metadata=metadata, concat=concat, parts=parts)
        if not done:
            for pid in dict.fromkeys(parts):  # the partial's last PATCH will find the final
                core.lifecycle.tus.link_final(pid, final.id)
        try:
            return self.concatenate(owner, final.id)
        except Exception:
            if done:  # nobody has the final's URL yet: take it back
                core.terminate_quietly(owner, final.id)
            raise

    def partial(self, owner: str, partial_id: str) -> TusUpload:
        try:
            up = self.core.get(owner, partial_id)
        except ApiError:
            raise ApiError(
                "upload_not_found",
                "A partial upload named in Upload-Concat does not exist (or is not yours).",
                details={"upload_id": partial_id},
            ) from None
        if up.finished or not up.is_partial:
            raise ApiError("bad_request", "Upload-Concat names an upload that is not a partial one.", details={"upload_id": partial_id})
        return up

    def wake_finals(self, owner: str, partial: TusUpload) -> None:
        """A partial is done: try each final waiting for it (a failure is left for the final's next HEAD)."""
        for final_id in partial.finals:
            try:
                self.concatenate(owner, final_id)
            except ApiError as exc:
                log.info("tus_final_not_ready", final_id=final_id, code=exc.code)
            except Exception as exc:
                log.warning("tus_final_not_ready", final_id=final_id, error_type=type(exc).__name__)

    def concatenate(self, owner: str, final_id: str) -> TusUpload:
        """Copy the partials into the final, resuming at its offset, then finish it (see the module docstring)."""
        core = self.core
        final = core.get(owner, final_id)
        if final.finished:
            return final
        try:
            partials = [self.partial(owner, pid) for pid in final.parts]
        except ApiError as exc:
            raise ApiError(
                "conflict", "A partial upload of this final upload no longer exists; terminate it and start again.", details=exc.details
            ) from None
        if not all(p.complete for p in partials):
            known = all(p.length is not None for p in partials)
            return replace(final, offset=None, length=sum(p.length or 0 for p in partials) if known else None)
        total = sum(p.length or 0 for p in partials)
        parts = final.parts
        if final.length is None:
            self._claim_length(owner, final, total)
        elif final.length != total:
            raise ApiError("conflict", "The partial uploads no longer add up to the final upload's length.")
        for _ in range(COPY_ROUNDS):
            final = core.get(owner, final_id)
            if final.finished or final.at >= total:
                break
            writer = core.appender(owner, final, length=None, staged=False, reserve=False, limit=total - final.at, allow_final=True)
            try:
                for piece in self._read(owner, partials, final.at):
                    writer.feed(piece)
                writer.finish()
            except OffsetMismatch:
                continue  # another request is copying too: resume at the offset it reached
            except ApiError:
                if core.get(owner, final_id).finished:
                    break  # another request finished the copy (and removed the partials) under our feet
                raise
            break
        else:
            raise ApiError("conflict", "The final upload is being concatenated by other requests; ask again.")
        current = core.get(owner, final_id)
        result = current if current.finished else core.finish(owner, current)
        for p in dict.fromkeys(parts):
            if not [f for f in self._finals_of(owner, p) if f != final_id]:
                core.terminate_quietly(owner, p)
        log.info("tus_concatenated", final_id=final_id, owner=owner, parts=len(parts), size=total)
        return result

    def _finals_of(self, owner: str, partial_id: str) -> tuple[str, ...]:
        try:
            return self.core.get(owner, partial_id).finals
        except ApiError:
            return ()

    def _claim_length(self, owner: str, final: TusUpload, total: int) -> None:
        """Reserve the final's length, then set it; the bytes go back when another request set it first."""
        lifecycle = self.core.lifecycle
        with lifecycle.growing(owner, final.id, total) as grant:
            appended = lifecycle.tus.append(
                final.id,
                owner=owner,
                expected=final.at,
                new_offset=final.at,
                segments=[],
                now_iso=iso(self.core.clock()),
                length=total,
                allow_final=True,
            )
            grant.kept = appended.length_set

    def _read(self, owner: str, partials: list[TusUpload], start: int) -> Iterator[bytes]:
        """The partials' bytes end to end from ``start``, each chunk opened and verified."""
        base = 0
        for p in partials:
            length = p.length or 0
            if start < base + length:
                record = FileRecord(
                    id=p.id,
                    name="",
                    size=length,
                    owner=owner,
                    created_at="",
                    updated_at="",
                    mime_type="",
                    sha256="",
                    kind="file",
                    total_chunks=math.ceil(length / p.chunk_size),
                    chunk_size=p.chunk_size,
                    dek=p.dek,
                )
                try:
                    yield from self.core.reader.read_chunks(record, max(0, start - base), length)
                except (ChunkMissing, ChunkCorrupt) as exc:
                    log.error("tus_partial_unreadable", upload_id=p.id, chunk_index=exc.index)
                    raise ApiError("stored_data_corrupt", details={"upload_id": p.id, "chunk_index": exc.index}) from None
            base += length
