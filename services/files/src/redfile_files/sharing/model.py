"""What a share link is to its owner and to a download: the views, the token's digest, the password hasher."""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
from dataclasses import dataclass

from redfile_files.records import FileRecord, iso

TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{43}$")


@functools.cache
def password_hasher():
    """argon2id at OWASP's minimum: a link password guards one link and is checked on every download.

    Imported on first use: a files worker that never meets a link password never loads argon2
    (the benchmarks check that workers stay small).
    """
    from argon2 import PasswordHasher

    return PasswordHasher(time_cost=2, memory_cost=19_456, parallelism=1)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def client_key(secret: str, address: str) -> str:
    """Whose resume allowance it is: the client's address, keyed with the app's secret (never stored as it is)."""
    return hmac.new(secret.encode(), (address or "").encode(), hashlib.sha256).hexdigest()[:32]


@dataclass(frozen=True)
class LinkView:
    """A link as its owner sees it (never the token, which only its creation returns)."""

    id: str
    file_id: str
    created_at: str
    expires_at: str | None
    max_downloads: int | None
    downloads: int
    password: bool
    preview: bool
    burn_after_read: bool
    visibility: str  # public: anyone with the link; private: only the owner and the file's recipients, logged in
    state: str  # active | expired | used_up

    @classmethod
    def of(cls, row: dict, now: float) -> LinkView:
        exp, max_dl, n = int(row.get("expires_ts") or 0), int(row.get("max_downloads") or 0), int(row.get("downloads") or 0)
        state = "expired" if exp and now >= exp else "used_up" if max_dl and n >= max_dl else "active"
        return cls(
            id=row["id"],
            file_id=row["file_id"],
            created_at=row.get("created_at", ""),
            expires_at=iso(exp) if exp else None,
            max_downloads=max_dl or None,
            downloads=n,
            password=bool(row.get("password")),
            preview=row.get("preview") == "1",
            burn_after_read=row.get("burn") == "1",
            visibility=row.get("visibility") or "public",
            state=state,
        )


@dataclass(frozen=True)
class OpenedLink:
    record: FileRecord
    link: LinkView
    downloads: int
    digest: str = ""
    client: str = ""  # whose resume allowance a download spends or opens (Sharing.client_key)
    resumed: bool = False  # this download resumed a counted one instead of counting
