"""Every Redis key of the files service: the builders, the parser, and the key-space table.

A key is ``files:{<tag>}:<rest>``: one ACL pattern (``~files:*``) covers the service, and the
braces are a Redis Cluster hash tag, so the keys of one file or upload (tag ``<id>``), of one
user (``u:<username>``), of one share token (``l:<sha256(token)>``) and the global index
(``all``) each live in one slot.  No command or script touches keys of two tags.

A chunk has a tag of its own, ``<id>.<index>``, so a file's chunks spread over every slot (and
every primary of a cluster) instead of filling its id's; its key also names its content version
(``chunk_version``: from its part record), so a write never changes the bytes a recorded chunk
reads back as.  Files and uploads stored before (no ``layout`` field) keep their chunks at
``files:{<id>}:c:<index>`` (``LEGACY``): ``chunk`` builds either (an upload moves to ``SPREAD``
with its next chunk: ``ChunkStore.migrate``).

``KEY_SPACES`` is the table docs/architecture.md shows (a test keeps the two equal); ``classify``
parses a key back into its space, for the consistency checker.
"""

from __future__ import annotations

import base64
import math
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from redis.cluster import key_slot

PREFIX = "files"
LEGACY = "1"  # chunks in the id's slot: files:{<id>}:c:<index>
SPREAD = "2"  # chunks in slots of their own: files:{<id>.<index>}:c:<version>
LAYOUT = SPREAD  # the layout of every new upload (its ``layout`` field; absent: LEGACY)


class UploadMode(StrEnum):
    """How an upload was opened: its chunk rules and what it reserves."""

    SESSION = "session"  # POST /uploads: a declared size, reserved whole; chunks of chunk_size
    SEED = "seed"  # POST /upload_chunk: total_chunks only; each new chunk reserves its bytes
    TUS = "tus"  # /tus/: a byte offset over uniform chunks; a deferred length reserves as bytes come


# -- one file or upload: tag {<id>} ------------------------------------------------------------
def id_key(file_id: str, rest: str) -> str:
    return f"{PREFIX}:{{{file_id}}}:{rest}"


def upload(file_id: str) -> str:
    return id_key(file_id, "upload")


def parts(file_id: str) -> str:
    return id_key(file_id, "parts")


def meta(file_id: str) -> str:
    return id_key(file_id, "meta")


def gone(file_id: str) -> str:
    return id_key(file_id, "gone")


# -- one chunk: tag {<id>.<index>} ---------------------------------------------------------------
def chunk_key(file_id: str, index: int, rest: str) -> str:
    return f"{PREFIX}:{{{file_id}.{index}}}:{rest}"


def chunk_version(record: str | bytes) -> str:
    """A chunk's content version: the first 16 hex digits of the BLAKE3 in its part record (``size:crc32c:blake3``)."""
    text = record.decode() if isinstance(record, bytes) else record
    return text.rsplit(":", 1)[-1][:16]


def chunk(file_id: str, index: int, record: str | bytes, layout: str = LAYOUT) -> str:
    """Where the chunk whose part record is ``record`` is stored, in ``layout`` (``SPREAD`` or ``LEGACY``)."""
    if layout == LEGACY:
        return id_key(file_id, f"c:{index}")
    return chunk_key(file_id, index, f"c:{chunk_version(record)}")


def chunk_spread(file_id: str, size: int, chunk_bytes: int, ranges: Sequence[tuple[int, int]]) -> list[float]:
    """The share of a ``size``-byte file's bytes (chunks of ``chunk_bytes``) whose keys fall in each slot range
    ``(first, last)`` of ``ranges``: the layout's spread over a cluster's primaries (CRC16 of the tag; no Redis asked)."""
    held = [0] * len(ranges)
    n = math.ceil(size / chunk_bytes)
    for index in range(n):
        length = chunk_bytes if index < n - 1 else size - chunk_bytes * (n - 1)
        slot = key_slot(chunk(file_id, index, f"{length}:00000000:{'0' * 64}").encode())
        held[next(p for p, (first, last) in enumerate(ranges) if first <= slot <= last)] += length
    return [h / size for h in held]


def incoming(file_id: str, index: int) -> str:
    """Where a chunk's bytes wait for their script to rename them into place (the chunk's slot): unique per attempt."""
    return chunk_key(file_id, index, f"in:{secrets.token_hex(8)}")


def tus_staging(file_id: str, index: int, token: str, n: int) -> str:
    """The ``n``-th chunk (index ``index``) staged by the tus request with staging ``token``."""
    return chunk_key(file_id, index, f"s:{token}:{n}")


def new_staging_token() -> str:
    return secrets.token_hex(8)


def share(file_id: str, share_id: str) -> str:
    return id_key(file_id, f"share:{share_id}")


def shares(file_id: str) -> str:
    return id_key(file_id, "shares")


def recipients(file_id: str) -> str:
    return id_key(file_id, "recipients")


def resume(file_id: str, share_id: str, client: str) -> str:
    """A client's resume allowance on one link (``client``: a keyed hash of its address)."""
    return id_key(file_id, f"resume:{share_id}:{client}")


# -- one share token: tag {l:<sha256(token)>} ------------------------------------------------------
def link(token_sha256: str) -> str:
    return f"{PREFIX}:{{l:{token_sha256}}}:link"


def password_failures(token_sha256: str) -> str:
    return f"{PREFIX}:{{l:{token_sha256}}}:pwfail"


def password_checks(token_sha256: str) -> str:
    return f"{PREFIX}:{{l:{token_sha256}}}:pwcheck"


def password_client_failures(token_sha256: str, client: str) -> str:
    """``client``: ``redfile_common.limiter.client_id`` (an address, an IPv6 /64, or ``x-<digest>``)."""
    return f"{PREFIX}:{{l:{token_sha256}}}:pwfail:{client}"


def password_client_checks(token_sha256: str, client: str) -> str:
    return f"{PREFIX}:{{l:{token_sha256}}}:pwcheck:{client}"


def password_wait(token_sha256: str, client: str) -> str:
    return f"{PREFIX}:{{l:{token_sha256}}}:pwwait:{client}"


# -- one user: tag {u:<username>} ------------------------------------------------------------------
def user_key(user: str, rest: str) -> str:
    return f"{PREFIX}:{{u:{user}}}:{rest}"


def quota(user: str) -> str:
    return user_key(user, "quota")


def held(user: str) -> str:
    return user_key(user, "held")


def user_files(user: str) -> str:
    return user_key(user, "files")


def user_names(user: str) -> str:
    return user_key(user, "names")


def user_sizes(user: str) -> str:
    return user_key(user, "sizes")


def index_rows(user: str) -> str:
    return user_key(user, "rows")


def index_id(file_id: str) -> str:
    """A file id as the owner's name and size indexes hold it: its 16 bytes in unpadded base64url (22 characters, not
    32: each entry a smaller allocation, docs/architecture.md)."""
    return base64.urlsafe_b64encode(bytes.fromhex(file_id)).rstrip(b"=").decode()


def file_id_of(ix: str) -> str:
    """``index_id`` backwards."""
    return base64.urlsafe_b64decode(ix + "==").hex()


def due(user: str) -> str:
    return user_key(user, "due")


def user_links(user: str) -> str:
    return user_key(user, "links")


def inbox(user: str) -> str:
    return user_key(user, "inbox")


DUE_PATTERN = user_key("*", "due")


def user_of_due_key(key: bytes | str) -> str:
    text = key.decode() if isinstance(key, bytes) else key
    return text[len(f"{PREFIX}:{{u:") : -len("}:due")]


# -- the global index: tag {all} -------------------------------------------------------------------
ALL_FILES = f"{PREFIX}:{{all}}:files"
ALL_SIZES = f"{PREFIX}:{{all}}:sizes"
ALL_BYTES = f"{PREFIX}:{{all}}:bytes"
ALL_UPLOADS = f"{PREFIX}:{{all}}:uploads"
SWEEP_LOCK = f"{PREFIX}:{{all}}:sweep-lock"
GC_CURSOR = f"{PREFIX}:{{all}}:gc-cursor"

EVERY_KEY = f"{PREFIX}:*"
FILE_OR_UPLOAD_HASHES = f"{PREFIX}:{{*}}:*"


# -- the table, and the parser built on it ---------------------------------------------------------
@dataclass(frozen=True)
class KeySpace:
    key: str  # as docs/architecture.md writes it
    space: str  # id | chunk | link | user | all: what the tag names
    part: str  # the family's name
    rest: str  # a regex for what follows the tag (group 1: the family's argument, if any)
    type: str  # the Redis type it must have
    ttl: str
    holds: str

    @property
    def doc_type(self) -> str:
        return {"zset": "sorted set"}.get(self.type, self.type)


_MODES = "/".join(f"`{m}`" for m in UploadMode)
KEY_SPACES: tuple[KeySpace, ...] = (
    KeySpace("files:{<id>}:upload", "id", "upload", "upload", "hash", "EXPIREAT the upload's deadline",
             f"an upload in progress: owner, mode ({_MODES}), total_chunks, total_size (`\"\"` while a tus length is deferred), "
             "chunk_size, name, mime_type, declared sha256, want_sha256 (`1`: the file's SHA-256 is computed — declared, asked "
             "for with `checksum_algorithm`, or a one-request file), file_expires, dek (wrapped data key), created_at, updated_at, "
             "received_bytes (a tus upload's offset), deadline, folder (sessions and tus); tus only: tus_metadata (`Upload-Metadata`, normalised), tus_concat "
             "(`partial`, or a final's `final;<urls>`), tus_parts (a final's partial ids), `tus_final:<id>` (on a partial: a final "
             "waiting for it), layout (`2`: chunks spread; absent: stored before, chunks in the id's slot)"),
    KeySpace("files:{<id>}:parts", "id", "parts", "parts", "hash", "the upload's deadline; then none, or the file's expiry",
             "chunk index → `size:crc32c:blake3` of the plaintext (the same bytes always make the same record); after "
             "completion, the file's chunk table"),
    KeySpace("files:{<id>.<index>}:c:<version>", "chunk", "chunk", r"c:([0-9a-f]{16})", "string",
             "now + `UPLOAD_TTL` when written, pushed with the upload's deadline; then none, or the file's expiry",
             "the chunk's bytes: raw, or `nonce‖ciphertext‖tag` (AES-256-GCM) — never base64; `<version>`: the first 16 hex "
             "of the BLAKE3 in its part record. Written (only if absent) before its part is recorded: one no record names "
             "is a refused or interrupted write, or a tus tail's earlier version, and goes with its TTL"),
    KeySpace("files:{<id>.<index>}:in:<rand>", "chunk", "staging", r"in:[0-9a-f]{16}", "string", "60 s",
             "a chunk's bytes on their way in: SET (a streamed chunk: sent as its body arrives, created only whole), then renamed "
             "into `c:<version>` by the script right behind it (or deleted) — only a crash between the two leaves one, until its TTL"),
    KeySpace("files:{<id>.<index>}:s:<token>:<n>", "chunk", "staging", r"s:[0-9a-f]{16}:([0-9]+)", "string",
             "`UPLOAD_TTL` (staged for a checksum), else 60 s",
             "a tus `PATCH`'s chunk (sealed like a chunk) on its way in: staged until its `Upload-Checksum` is verified, or, for a "
             "chunk of 64 KiB or more, just until the script right behind its `SET` renames it into its `c:<version>` place; "
             "deleted when the request ends otherwise — only a crash or a lost connection leaves one, until its TTL"),
    KeySpace("files:{<id>}:c:<index>", "id", "chunk", r"c:(0|[1-9][0-9]*)", "string",
             "as `files:{<id>.<index>}:c:<version>`",
             "a chunk of a file or upload stored before chunks spread (no `layout` field): read and deleted in place; such an "
             "upload moves its chunks to their own keys with its next chunk"),
    KeySpace("files:{<id>}:in:<index>:<rand>", "id", "staging", r"in:(0|[1-9][0-9]*):[0-9a-f]{16}", "string", "60 s",
             "a chunk's bytes on their way in, staged by a version before chunks spread: none is written now; one left by a "
             "crash goes with its TTL"),
    KeySpace("files:{<id>}:s:<token>:<n>", "id", "staging", r"s:[0-9a-f]{16}:([0-9]+)", "string",
             "`UPLOAD_TTL` (staged for a checksum), else 60 s",
             "a tus `PATCH`'s chunk staged by a version before chunks spread: none is written now; one left by a crash goes "
             "with its TTL"),
    KeySpace("files:{<id>}:gone", "id", "gone", "gone", "hash", "none (deleted once its chunks are)",
             "a deleted file's or aborted upload's part table (and `layout`, `owner`): the chunks still to delete; the sweep finishes "
             "a deletion a crash interrupted (the id stays due until then)"),
    KeySpace("files:{<id>}:meta", "id", "meta", "meta", "hash", "none, or EXPIREAT the file's expiry",
             "id, name, size, owner, created_at, updated_at, created_ms, mime_type, sha256 (empty unless asked for), crc32c, "
             "composite_blake3, kind, total_chunks, chunk_size, expires_at, expires_ts, dek, layout (its upload's), folder (absent: "
             "`/`); a file made by "
             "tus also tus_metadata, tus_concat (for its `HEAD`)"),
    KeySpace("files:{<id>}:share:<sid>", "id", "share", r"share:([0-9a-f]{32})", "hash", "none, or the file's expiry",
             "one share link of the file: id, file_id, owner, token_sha256 (the token itself is never stored), password (argon2id "
             "hash or empty), expires_ts (0: never), max_downloads (0: no limit), downloads, preview, burn, visibility, created_at"),
    KeySpace("files:{<id>}:shares", "id", "shares", "shares", "hash", "none, or the file's expiry",
             "share id → created_at: every link of the file (deleted with the file)"),
    KeySpace("files:{<id>}:recipients", "id", "recipients", "recipients", "hash", "none, or the file's expiry",
             "account id (auth's, never reused) → username: the accounts the file is shared with, read-only"),
    KeySpace("files:{<id>}:resume:<sid>:<client>", "id", "resume", r"resume:([0-9a-f]{32}):[0-9a-f]{32}", "string",
             "`SHARE_RESUME_WINDOW` from the counted download",
             "bytes the client (an HMAC of its address) may still fetch from link `<sid>` in ranges that do not start at byte "
             "0 without counting a download; left to expire when the link or file goes"),
    KeySpace("files:{l:<sha256(token)>}:link", "link", "link", "link", "string", "none, or the file's expiry",
             "`<file id>:<share id>`: which link a token opens"),
    KeySpace("files:{l:<sha256(token)>}:pwfail", "link", "pwfail", "pwfail", "string",
             "`SHARE_PASSWORD_WINDOW` from the first failure",
             "wrong passwords on that link in the window, from every client (every replica): past "
             "`SHARE_PASSWORD_MAX_FAILURES_PER_LINK` the clients that fail wait"),
    KeySpace("files:{l:<sha256(token)>}:pwcheck", "link", "pwcheck", "pwcheck", "zset", "60 s after the last check began",
             "none written any more (the link's scope slows, holds no places); one left from before ends with its TTL"),
    KeySpace("files:{l:<sha256(token)>}:pwfail:<client>", "link", "pwfail-client", r"pwfail:([0-9a-fx.:/-]+)", "string",
             "`SHARE_PASSWORD_WINDOW` from the first failure",
             "wrong passwords on that link from one client (an address, an IPv6 /64): at `SHARE_PASSWORD_MAX_FAILURES` that "
             "client is refused until the window ends"),
    KeySpace("files:{l:<sha256(token)>}:pwcheck:<client>", "link", "pwcheck-client", r"pwcheck:([0-9a-fx.:/-]+)", "zset",
             "60 s after the last check began",
             "that client's password checks of the link in flight (attempt id → until when it holds its place)"),
    KeySpace("files:{l:<sha256(token)>}:pwwait:<client>", "link", "pwwait", r"pwwait:([0-9a-fx.:/-]+)", "string",
             "the client's delay (at most `SHARE_PASSWORD_SLOWDOWN_MAX`)",
             "past the link's ceiling: how long that client still waits before its next password check"),
    KeySpace("files:{u:<username>}:quota", "user", "quota", "quota", "hash", "none (deleted when empty)",
             "`limit`, `max_file` (admin overrides), `used` (Σ charged), `reserved` (Σ reserved)"),
    KeySpace("files:{u:<username>}:held", "user", "held", "held", "hash", "none",
             "id → `r:<bytes>` (reserved by an upload) or `c:<bytes>` (charged by a file)"),
    KeySpace("files:{u:<username>}:files", "user", "files", "files", "zset", "none",
             "the user's file ids, score = creation time (ms)"),
    KeySpace("files:{u:<username>}:names", "user", "names", "names", "zset", "none",
             "the user's files by folder and name: `<folder>/\\0<casefold(name)>\\0<base64url id>`, all scores 0 (the root's "
             "folder part is `/`): a folder is a lex range, its subtree a prefix (changed with `files`)"),
    KeySpace("files:{u:<username>}:sizes", "user", "sizes", "sizes", "zset", "none",
             "base64url id → size, for each id in `files` (changed with it)"),
    KeySpace("files:{u:<username>}:rows", "user", "rows", "rows", "hash", "none",
             "id → JSON list of `{f: folder key, n: casefold(name)}`: the `names` entries of an operation in flight (removed "
             "by its last step or the reconciler) and the one of a file with an expiry (its `meta` goes by TTL)"),
    KeySpace("files:{u:<username>}:due", "user", "due", "due", "zset", "none",
             "id → when (unix µs) the reconciler must look at it: an upload's deadline, a file's expiry, a lease's end"),
    KeySpace("files:{u:<username>}:links", "user", "links", "links", "hash", "none",
             "share id → file id: the user's links (repaired lazily)"),
    KeySpace("files:{u:<username>}:inbox", "user", "inbox", "inbox", "hash", "none",
             'file id → owner: files shared with the user ("shared with me"; repaired lazily)'),
    KeySpace("files:{all}:files", "all", "files", "files", "zset", "none", "every file id, score = creation time (ms)"),
    KeySpace("files:{all}:sizes", "all", "sizes", "sizes", "hash", "none",
             "id → size, for each id in `files:{all}:files` (changed in the same script as the index)"),
    KeySpace("files:{all}:bytes", "all", "bytes", "bytes", "string", "none (deleted at 0)",
             "the sum of `files:{all}:sizes`: every file's bytes"),
    KeySpace("files:{all}:uploads", "all", "uploads", "uploads", "zset", "none",
             "every upload in progress, score = creation time (ms)"),
    KeySpace("files:{all}:sweep-lock", "all", "sweep-lock", "sweep-lock", "string", "`SWEEP_INTERVAL`",
             "held by the worker running the background sweep"),
    KeySpace("files:{all}:gc-cursor", "all", "gc-cursor", "gc-cursor", "string", "none",
             "where the sweep's walk over `files:{all}:files` is"),
)  # fmt: skip


def doc_rows() -> list[str]:
    """``KEY_SPACES`` as the rows of docs/architecture.md's key-space table."""
    return [f"| `{ks.key}` | files | {ks.doc_type} | {ks.ttl} | {ks.holds} |" for ks in KEY_SPACES]


@dataclass(frozen=True)
class Family:
    """What a key is: the space its tag names, the tag, the family, its Redis type and argument."""

    space: str  # id | chunk | user | link | all
    tag: str  # the id, the username, the token's hash, "all"
    part: str
    type: str
    arg: str = ""  # a chunk's or staged chunk's index, a share's id
    version: str = ""  # a chunk's content version (its SPREAD key's)


_KEY = re.compile(r"files:\{([^{}]*)\}:(.+)", re.S)
_CHUNK_TAG = re.compile(r"([0-9a-f]{32})\.(0|[1-9][0-9]*)")
_HEX32 = re.compile(r"[0-9a-f]{32}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
_BY_SPACE: dict[str, list[tuple[re.Pattern, KeySpace]]] = {}
for _ks in KEY_SPACES:
    _BY_SPACE.setdefault(_ks.space, []).append((re.compile(_ks.rest, re.S), _ks))


def classify(key: str) -> Family | None:
    """The family of a ``files:*`` key, or None when it is of no known family."""
    found = _KEY.fullmatch(key)
    if not found:
        return None
    tag, rest = found.groups()
    index = ""
    if _HEX32.fullmatch(tag):
        space, name = "id", tag
    elif chunk_tag := _CHUNK_TAG.fullmatch(tag):
        space, (name, index) = "chunk", chunk_tag.groups()
    elif tag.startswith("u:") and len(tag) > 2:
        space, name = "user", tag[2:]
    elif tag.startswith("l:") and _HEX64.fullmatch(tag[2:]):
        space, name = "link", tag[2:]
    elif tag == "all":
        space, name = "all", "all"
    else:
        return None
    for pattern, ks in _BY_SPACE[space]:
        matched = pattern.fullmatch(rest)
        if matched:
            found_arg = matched.group(1) if pattern.groups else ""
            if space == "chunk":  # the index is the tag's; a chunk's group is its version, a staged one's its number
                return Family(space, name, ks.part, ks.type, index, found_arg if ks.part == "chunk" else "")
            return Family(space, name, ks.part, ks.type, found_arg)
    return None
