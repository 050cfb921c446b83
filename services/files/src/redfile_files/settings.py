"""Settings of the files service (environment variables; see the README's table).

Each field is read from the upper-cased variable of the same name
(``MAX_CHUNK_BYTES``, ``UPLOAD_TTL``, ...).
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from redfile_common.settings import ServiceSettings

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB


class FilesSettings(ServiceSettings):
    service_name: Literal["files"] = "files"

    # Largest chunk accepted by POST /upload_chunk (raw bytes, after base64 decoding).
    max_chunk_bytes: int = Field(default=8 * MIB, ge=1, le=512 * MIB)
    # Largest total_chunks an upload may declare.
    max_chunks: int = Field(default=100_000, ge=1, le=10_000_000)
    # Largest file an upload may complete to.
    max_file_bytes: int = Field(default=10 * GIB, ge=1)
    # Seconds an upload may sit idle before all its keys expire.
    upload_ttl: int = Field(default=86_400, ge=10)
    # Largest one-request upload (POST /files) and text snippet (POST /texts).
    max_single_upload_bytes: int = Field(default=8 * MIB, ge=1, le=512 * MIB)
    # Longest file name, in UTF-8 bytes.
    max_name_bytes: int = Field(default=255, ge=1, le=1024)

    @model_validator(mode="after")
    def _check_limits(self) -> "FilesSettings":
        if self.max_chunk_bytes > self.max_file_bytes:
            raise ValueError("MAX_CHUNK_BYTES must not exceed MAX_FILE_BYTES")
        return self

    @property
    def max_request_bytes(self) -> int:
        """Largest request body: a base64 chunk or one-request upload plus form/JSON overhead."""
        biggest = max(self.max_chunk_bytes, self.max_single_upload_bytes)
        return biggest * 4 // 3 + 64 * KIB
