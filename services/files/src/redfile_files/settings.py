"""Settings of the files service (environment variables; see the README's table).

Each field is read from the upper-cased variable of the same name
(``MAX_CHUNK_BYTES``, ``UPLOAD_TTL``, ...).
"""

from __future__ import annotations

from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, model_validator

from redfile_common.settings import ServiceSettings
from redfile_files.crypto import parse_master_keys

KIB = 1024
MIB = 1024 * KIB
GIB = 1024 * MIB

# 8 MiB less 4 KiB: Redis's allocator (jemalloc) rounds a value of exactly 8 MiB up to a
# 10 MiB size class (+25 %), while 8 MiB - 4 KiB, with its 28 bytes of AES-GCM overhead
# and Redis's string header, still fits the 8 MiB class (+0.05 %).  See docs/performance.md.
DEFAULT_CHUNK_BYTES = 8 * MIB - 4 * KIB


class FilesSettings(ServiceSettings):
    service_name: Literal["files"] = "files"

    # Largest chunk accepted (raw bytes, after base64 decoding), by every upload API.
    max_chunk_bytes: int = Field(default=8 * MIB, ge=1, le=512 * MIB)
    # The chunk size an upload session gets when its client names none (capped by MAX_CHUNK_BYTES).
    default_chunk_bytes: int = Field(default=DEFAULT_CHUNK_BYTES, ge=1, le=512 * MIB)
    # Largest total_chunks an upload may declare.
    max_chunks: int = Field(default=100_000, ge=1, le=10_000_000)
    # Largest file an upload may complete to (an admin may set another per user).
    max_file_bytes: int = Field(default=10 * GIB, ge=1)
    # Bytes a user may hold (files plus uploads in progress) unless an admin set their quota.
    default_quota_bytes: int = Field(default=100 * GIB, ge=0)
    # Seconds an upload may sit idle before it expires and its reserved bytes return.
    upload_ttl: int = Field(default=86_400, ge=10)
    # Largest one-request upload (POST /files) and text snippet (POST /texts).
    max_single_upload_bytes: int = Field(default=8 * MIB, ge=1, le=512 * MIB)
    # Longest file name, in UTF-8 bytes.
    max_name_bytes: int = Field(default=255, ge=1, le=1024)
    # Seconds between background sweeps (expired uploads and files, interrupted operations); 0: off.
    sweep_interval: int = Field(default=60, ge=0, le=86_400)
    # Entries one sweep step reconciles per user (and global-index entries it checks).
    sweep_batch: int = Field(default=200, ge=1, le=10_000)
    # Master keys for encryption at rest: "kid:base64(32 bytes),...": the first wraps new files'
    # data keys, every one unwraps.  Empty: chunks are stored in the clear.
    encryption_keys: str = ""
    # Browser origins allowed to use the tus endpoint (/tus/) across origins, comma-separated;
    # "*" for any; empty: no CORS headers.
    tus_cors_origins: str = ""
    # Wrong passwords one share link accepts from one client within SHARE_PASSWORD_WINDOW seconds
    # (every replica together) before it answers that client 429 until the window ends.  Past
    # SHARE_PASSWORD_MAX_FAILURES_PER_LINK (all clients) the link never locks, but a client that
    # fails waits before its next try (1 s, doubling, at most SHARE_PASSWORD_SLOWDOWN_MAX).
    share_password_max_failures: int = Field(default=5, ge=1, le=1000)
    share_password_max_failures_per_link: int = Field(default=20, ge=1, le=100_000)
    share_password_window: int = Field(default=900, ge=1, le=86_400)
    share_password_slowdown_max: int = Field(default=60, ge=1, le=3600)
    # The address users reach Redfile at ("https://files.example.com", or with a path prefix): share
    # links and QR codes are built on it.  Empty: the request's own scheme and host, which are the
    # proxy's (X-Forwarded-Proto/-Host) only behind TRUSTED_PROXY_HOPS, else the service's own address.
    public_url: str = ""
    # Seconds during which a client that downloaded through a download-limited link may resume
    # (ranges not from byte 0, up to the file's size in all) without counting another download; 0: off.
    share_resume_window: int = Field(default=3600, ge=0, le=7 * 86_400)

    @model_validator(mode="after")
    def _check_limits(self) -> FilesSettings:
        if self.max_chunk_bytes > self.max_file_bytes:
            raise ValueError("MAX_CHUNK_BYTES must not exceed MAX_FILE_BYTES")
        parse_master_keys(self.encryption_keys)  # raises ValueError naming the problem, never a key
        if self.public_url:
            url = urlsplit(self.public_url)
            if url.scheme not in ("http", "https") or not url.hostname or url.query or url.fragment or url.username or url.password:
                raise ValueError("PUBLIC_URL must be an http(s) URL with a host and no query, fragment or credentials")
        return self

    @property
    def public_base(self) -> str:
        """PUBLIC_URL with one trailing slash ("" when unset)."""
        return self.public_url.rstrip("/") + "/" if self.public_url else ""

    @property
    def chunk_bytes(self) -> int:
        """The chunk size of an upload session whose client names none."""
        return min(self.default_chunk_bytes, self.max_chunk_bytes)

    @property
    def tus_cors_origin_list(self) -> tuple[str, ...]:
        return tuple(o.strip().rstrip("/") for o in self.tus_cors_origins.split(",") if o.strip())

    @property
    def max_request_bytes(self) -> int:
        """Largest request body: a base64 chunk or one-request upload plus form/JSON overhead."""
        biggest = max(self.max_chunk_bytes, self.max_single_upload_bytes)
        return biggest * 4 // 3 + 64 * KIB
