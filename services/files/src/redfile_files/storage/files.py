"""The files service's Redis storage: one file's (or upload's) keys, in one hash slot.

``storage`` (this module: the keys of one file or upload), ``tus_store`` (the
tus uploads' offset appends, on the same keys) and ``ledger`` (the keys of one
user, and the global index) are the only code of the service that talks to Redis.  Every key starts with ``files:`` (so one ACL prefix,
``~files:*``, covers the service) followed by a Redis Cluster hash tag in
braces; no command and no Lua script ever touches keys of two tags, so a move
to Redis Cluster needs no change of data model.
(The scripts build chunk key names from a prefix in ARGV rather than declaring
up to 100,000 keys; those keys carry the declared keys' tag, so share their slot.)

Key spaces (``<id>``: 32 hex characters; an upload keeps its id when it becomes a file)

==================================  ==========  ===================================================
key                                 type        holds / TTL
==================================  ==========  ===================================================
``files:{<id>}:upload``             hash        an upload in progress: owner, mode (session|seed),
                                                total_chunks, total_size, chunk_size, name,
                                                mime_type, sha256 (declared), want_sha256 ("1":
                                                declared or asked for), file_expires, dek,
                                                created_at, updated_at, received_bytes, deadline.
                                                EXPIREAT deadline.
``files:{<id>}:parts``              hash        chunk index -> "size:sha256:crc32c:blake3" of the
                                                plaintext.  The upload's deadline; then the
                                                file's chunk table (no TTL, or the file's expiry).
``files:{<id>}:c:<index>``          string      the chunk's bytes: raw, or ``nonce|ciphertext|tag``
                                                when encrypted (never base64).  Deadline, then
                                                none (or the file's expiry).
``files:{<id>}:in:<index>:<rand>``  string      a chunk's bytes on their way in: SET by ``put_chunk``
                                                (or streamed in by ``StagedChunk``, its script sent
                                                right behind it), then RENAMEd to ``c:<index>`` by
                                                its script (or deleted).  EX 60 s, in case the
                                                script never runs.
``files:{<id>}:meta``               hash        a file: id, name, size, owner, created_at,
                                                updated_at, created_ms, mime_type, sha256 ("" unless
                                                asked for), crc32c, composite_blake3 (or, stored
                                                before BLAKE3, composite_sha256), kind,
                                                total_chunks, chunk_size,
                                                expires_at, expires_ts, dek.  No TTL, or EXPIREAT
                                                expires_ts.
``files:{u:<user>}:quota``          hash        limit, max_file (admin overrides), used, reserved
``files:{u:<user>}:held``           hash        id -> "r:<bytes>" (reserved by an upload) or
                                                "c:<bytes>" (charged: a file, or one completing)
``files:{u:<user>}:files``          sorted set  the user's file ids, score = created ms
``files:{u:<user>}:due``            sorted set  id -> when (unix microseconds) the reconciler must
                                                look at it: an upload's deadline, a file's expiry,
                                                or the end of a lease (see below)
``files:{all}:files``               sorted set  every file id, score = created ms
``files:{all}:sizes``               hash        id -> size of each file in ``files:{all}:files``
``files:{all}:bytes``               string      the sum of ``files:{all}:sizes`` (deleted at 0)
``files:{all}:uploads``             sorted set  every upload in progress, score = created ms
``files:{all}:sweep-lock``          string      the background sweep's lock.  EX sweep_interval.
``files:{all}:gc-cursor``           string      where the sweep's walk of ``files:{all}:files`` is
==================================  ==========  ===================================================

**Counts** (``GET /internal/stats``) are read, never computed by a scan:

* one user's (tag ``{u:<user>}``): files = ZCARD ``files``, bytes = ``quota.used``,
  uploads in progress = HLEN ``held`` - ZCARD ``files`` -- ``held`` has one entry per
  file (charged, ``c:``) and per upload (reserved, ``r:``), and the user's index
  holds exactly the charged ones (the ledger's scripts change both together);
* everyone's (tag ``{all}``): files = ZCARD ``files:{all}:files``, bytes = GET
  ``files:{all}:bytes``, uploads = ZCARD ``files:{all}:uploads``.  The byte count
  changes in the same script as the index (so it is always the sum of the
  indexed files' sizes); the uploads set is its own step, taken before an
  upload is created and after it is gone.  Like the index, both are derived
  state that a crash can leave over-counted, never under-counted, until the
  reconciler acts on the id (at its lease's end or its deadline); expired
  files and uploads count until the sweep that follows their expiry.

**Truth and derived state.**  A file exists iff its ``meta`` exists; an upload
iff its ``upload`` hash exists (its TTL ends it exactly at its deadline).  Ids
are random and never reused, so "neither exists" is final.  The user's
``held``/``quota``/``files`` and the global index are derived from that truth,
kept in step by the protocol in ``ledger`` and ``reconcile``:

* acquiring steps run in the user's slot *before* the file's slot (reserve
  quota, then create the upload; charge the file and index it, then commit),
  releasing steps *after* (delete the file, then unindex it and release its
  bytes), so a crash in between over-counts (never under-counts) a quota and
  leaves an index entry that readers skip (its meta is missing);
* each multi-slot operation first takes a **lease**: it sets the id's ``due``
  score to now + 120 s in the user's slot.  Its file-slot step is **fenced**: it
  runs only before now + 60 s (the scripts compare Redis ``TIME``), so once a
  lease has run out no step of its operation can still land;
* the **reconciler** looks at an id only when its ``due`` is past, reads the
  file slot atomically and makes the user's slot and the global index agree
  with it, compare-and-set on the ``due`` score it saw (a newer lease wins).

Contract of ``FileStore`` (file slot only):

* ``create_upload`` and ``put_chunk(create=True)`` refuse (``late``) after their
  fence, and refuse an id that exists.  ``put_chunk`` checks owner, index, the
  chunk's size (sessions: ``chunk_size``, the last one the rest) or the declared
  total (seed uploads), that a chunk already stored at the index has the same
  part record (a repeat is a no-op, other bytes ``chunk_conflict``), and the
  largest file; only then does it write, and only after Redis answered is the
  chunk acknowledged.  A rejected write changes nothing.
* All keys of an upload share one deadline (``deadline``, from Redis's clock).
  Activity more than a tenth of ``upload_ttl`` after it was last set moves every
  key to now + ``upload_ttl``.
* ``commit`` (fenced) turns a complete upload into a file at once: meta
  written, chunks and part table lose their TTL (or get the file's expiry),
  upload hash deleted; or, when a chunk is missing or the sizes do not add up,
  nothing changes.  ``abort`` and ``delete_file`` (fenced) remove every key of
  the upload or file.  ``snapshot`` reads meta and upload in one MULTI.
* Redis must run with ``maxmemory-policy noeviction``: an evicted chunk of a
  stored file cannot be recovered (reads raise ``ChunkMissing``).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterable
from dataclasses import dataclass

import redis

from redfile_common.errors import ApiError
from redfile_files.checksums import Part

PREFIX = "files"
STAGING_TTL = 60  # seconds a chunk's staged bytes outlive a put_chunk that never ran its script
READ_PIECE = 1024 * 1024  # bytes per GETRANGE when a chunk is read back
MISSING_LIMIT = 100

_TIME = """
local t = redis.call('TIME')
local now = tonumber(t[1])
local now_us = now * 1000000 + tonumber(t[2])
"""

_CREATE_UPLOAD = (
    _TIME
    + """
if now_us > tonumber(ARGV[1]) then return {'late'} end
if redis.call('EXISTS', KEYS[1]) == 1 or redis.call('EXISTS', KEYS[2]) == 1 then return {'exists'} end
local deadline = now + tonumber(ARGV[2])
redis.call('HSET', KEYS[1], 'deadline', deadline, 'received_bytes', 0, unpack(ARGV, 3))
redis.call('EXPIREAT', KEYS[1], deadline)
return {'ok', deadline}
"""
)

# The chunk's bytes do not pass through Lua: the caller SETs them under a staging key (KEYS[5]) first,
# and the script RENAMEs it into place (O(1), no copy) or deletes it.  An 8 MiB argument copied into
# a Lua string and out again made a chunk cost 2.7x a plain SET (docs/performance.md).
_PUT_CHUNK = (
    _TIME
    + """
local upload, parts, chunk, meta, staging = KEYS[1], KEYS[2], KEYS[3], KEYS[4], KEYS[5]
-- two part records of the same bytes: equal strings, or (one record written before BLAKE3) equal size
-- and CRC32C and the same SHA-256 or BLAKE3 where both have one (checksums.Part.same_bytes)
local function same_bytes(a, b)
  if a == b then return true end
  local as, ash, ac, ab = string.match(a, '^(%d+):([^:]*):([^:]*):?([^:]*)$')
  local bs, bsh, bc, bb = string.match(b, '^(%d+):([^:]*):([^:]*):?([^:]*)$')
  if not as or not bs or as ~= bs or ac ~= bc then return false end
  if ab ~= '' and bb ~= '' then return ab == bb end
  if ash ~= '' and bsh ~= '' then return ash == bsh end
  return true
end
local function put()
local owner, index, part = ARGV[1], tonumber(ARGV[2]), ARGV[3]
local size, ttl, now_iso, chunk_prefix = tonumber(ARGV[4]), tonumber(ARGV[5]), ARGV[6], ARGV[8]
local received, deadline, old = 0, now + ttl, false
local create = ARGV[9] == '1'
if create then
  if now_us > tonumber(ARGV[10]) then return {'late'} end
  if redis.call('EXISTS', upload) == 1 or redis.call('EXISTS', meta) == 1 then return {'exists'} end
else
  local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes', 'deadline', 'mode', 'total_size', 'chunk_size')
  if not u[1] or u[1] ~= owner then return {'not_found'} end
  local total = tonumber(u[2])
  if u[5] == 'session' then
    if index >= total then return {'bad_index', total} end
    local expected = tonumber(u[7])
    if index == total - 1 then expected = tonumber(u[6]) - expected * (total - 1) end
    if size ~= expected then return {'bad_size', expected} end
  elseif ARGV[11] ~= u[2] then
    return {'total_mismatch', total}
  end
  received, deadline = tonumber(u[3]), tonumber(u[4])
  old = redis.call('HGET', parts, index)
  if old and redis.call('EXISTS', chunk) == 0 then
    -- the part's bytes are gone (evicted): take the new copy instead
    received = received - tonumber(string.match(old, '^(%d+):'))
    old = false
  end
end
if old then
  if not same_bytes(old, part) then return {'conflict'} end
elseif received + size > tonumber(ARGV[12]) then
  return {'too_large', received}
end
-- new bytes, but no staged copy of them (a staged SET Redis refused, sent just before on the same
-- connection by StagedChunk.finish, or a key evicted): nothing changes.  Checked only here, so a
-- script retried after it stored the chunk still finds it unchanged.
if not old and redis.call('EXISTS', staging) == 0 then return {'staging_lost'} end
if create then
  redis.call('HSET', upload, 'received_bytes', 0, 'deadline', deadline, unpack(ARGV, 13))
end
if deadline - now < ttl * 0.9 then
  deadline = now + ttl
  redis.call('HSET', upload, 'deadline', deadline)
  for _, i in ipairs(redis.call('HKEYS', parts)) do
    redis.call('EXPIREAT', chunk_prefix .. i, deadline)
  end
end
if not old then
  redis.call('RENAME', staging, chunk)
  redis.call('EXPIREAT', chunk, deadline)
  redis.call('HSET', parts, index, part)
  received = received + size
  redis.call('HSET', upload, 'received_bytes', received)
end
redis.call('HSET', upload, 'updated_at', now_iso)
redis.call('EXPIREAT', upload, deadline)
redis.call('EXPIREAT', parts, deadline)
return {old and 'unchanged' or 'stored', redis.call('HLEN', parts), received, deadline}
end
local result = put()
if result[1] ~= 'stored' then redis.call('UNLINK', staging) end
return result
"""
)

_COMMIT = (
    _TIME
    + """
local upload, parts, meta = KEYS[1], KEYS[2], KEYS[3]
local owner, total, size, chunk_prefix = ARGV[1], ARGV[3], tonumber(ARGV[4]), ARGV[5]
local expires = tonumber(ARGV[6])
if now_us > tonumber(ARGV[2]) then return {'late'} end
local u = redis.call('HMGET', upload, 'owner', 'total_chunks', 'received_bytes')
if not u[1] or u[1] ~= owner or u[2] ~= total then return {'not_found'} end
if redis.call('EXISTS', meta) == 1 then return {'exists'} end
local n = tonumber(total)
local missing, count = {}, 0
for i = 0, n - 1 do
  if redis.call('HEXISTS', parts, i) == 0 or redis.call('EXISTS', chunk_prefix .. i) == 0 then
    count = count + 1
    if count <= tonumber(ARGV[7]) then missing[count] = i end
  end
end
if count > 0 then return {'missing', count, missing} end
if tonumber(u[3]) ~= size then return {'size', tonumber(u[3])} end
for i = 0, n - 1 do
  if expires > 0 then redis.call('EXPIREAT', chunk_prefix .. i, expires) else redis.call('PERSIST', chunk_prefix .. i) end
end
redis.call('HSET', meta, unpack(ARGV, 8))
-- the upload's data key as stored now: redfile-rekey may have re-wrapped it since the caller read it
local dek = redis.call('HGET', upload, 'dek')
if dek then redis.call('HSET', meta, 'dek', dek) end
if expires > 0 then
  redis.call('EXPIREAT', meta, expires)
  redis.call('EXPIREAT', parts, expires)
else
  redis.call('PERSIST', parts)
end
redis.call('DEL', upload)
return {'ok'}
"""
)

_ABORT = (
    _TIME
    + """
if now_us > tonumber(ARGV[2]) then return {'late'} end
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner or owner ~= ARGV[1] then return {'not_found'} end
for _, i in ipairs(redis.call('HKEYS', KEYS[2])) do redis.call('UNLINK', ARGV[3] .. i) end
redis.call('UNLINK', KEYS[1], KEYS[2])
return {'ok'}
"""
)

_DELETE = (
    _TIME
    + """
if now_us > tonumber(ARGV[1]) then return {'late'} end
local m = redis.call('HMGET', KEYS[1], 'owner', 'total_chunks', 'size')
if not m[1] or (ARGV[3] ~= '' and m[1] ~= ARGV[3]) then return {'not_found'} end
for i = 0, tonumber(m[2]) - 1 do redis.call('UNLINK', ARGV[2] .. i) end
redis.call('UNLINK', KEYS[1], KEYS[2])
return {'ok', m[1], tonumber(m[3])}
"""
)


class ChunkMissing(Exception):
    """A chunk a file or completed upload needs is not in Redis."""

    def __init__(self, index: int) -> None:
        self.index = index
        super().__init__(f"chunk {index} is missing")


class Late(Exception):
    """A fenced step ran after its lease's fence: it changed nothing."""


@dataclass(frozen=True)
class ChunkWrite:
    stored: bool  # False: the same chunk was already there
    received_chunks: int
    received_bytes: int
    deadline: int


@dataclass(frozen=True)
class UploadState:
    id: str
    owner: str
    mode: str  # "session" (declared size) or "seed" (the seed's /upload_chunk)
    total_chunks: int
    total_size: int | None
    chunk_size: int | None
    name: str
    mime_type: str
    sha256: str  # declared by the client, or ""
    want_sha256: bool  # the file's SHA-256 is to be computed: declared, or asked for
    file_expires: int | None  # unix s the file will expire at
    created_at: str
    updated_at: str
    received_chunks: int
    received_bytes: int
    deadline: int
    dek: str


@dataclass(frozen=True)
class Snapshot:
    """The file slot of one id, read atomically."""

    meta: dict | None
    upload: dict | None


def upload_key(file_id: str) -> str:
    return f"{PREFIX}:{{{file_id}}}:upload"


def parts_key(file_id: str) -> str:
    return f"{PREFIX}:{{{file_id}}}:parts"


def chunk_prefix(file_id: str) -> str:
    return f"{PREFIX}:{{{file_id}}}:c:"


def chunk_key(file_id: str, index: int) -> str:
    return f"{chunk_prefix(file_id)}{index}"


def staging_key(file_id: str, index: int) -> str:
    """Where a chunk's bytes wait for ``put_chunk``'s script: unique per attempt, gone within STAGING_TTL."""
    return f"{PREFIX}:{{{file_id}}}:in:{index}:{secrets.token_hex(8)}"


def meta_key(file_id: str) -> str:
    return f"{PREFIX}:{{{file_id}}}:meta"


def _text(value: bytes | str | None) -> str:
    if value is None:
        return ""
    return value.decode() if isinstance(value, bytes) else value


def _int(value, default: int | None = 0) -> int | None:
    text = _text(value)
    return int(text) if text not in ("", None) else default


_META_INTS = ("size", "total_chunks", "chunk_size", "created_ms", "expires_ts")


def _decode_meta(raw: dict) -> dict | None:
    if not raw:
        return None
    meta = {_text(k): _text(v) for k, v in raw.items()}
    for field in _META_INTS:
        meta[field] = int(meta.get(field) or 0)
    return meta


def _decode_upload(file_id: str, raw: dict, count: int) -> UploadState | None:
    u = {_text(k): _text(v) for k, v in raw.items()}
    if not u.get("owner") or not u.get("total_chunks"):
        return None
    return UploadState(
        id=file_id,
        owner=u["owner"],
        mode=u.get("mode") or "seed",
        total_chunks=int(u["total_chunks"]),
        total_size=_int(u.get("total_size"), None),
        chunk_size=_int(u.get("chunk_size"), None),
        name=u.get("name", ""),
        mime_type=u.get("mime_type", ""),
        sha256=u.get("sha256", ""),
        want_sha256=bool(u.get("sha256")) or u.get("want_sha256") == "1",
        file_expires=_int(u.get("file_expires"), None),
        created_at=u.get("created_at", ""),
        updated_at=u.get("updated_at", ""),
        received_chunks=count,
        received_bytes=_int(u.get("received_bytes")),
        deadline=_int(u.get("deadline")),
        dek=u.get("dek", ""),
    )


def _flat(fields: dict) -> list:
    out: list = []
    for key, value in fields.items():
        out += [key, "" if value is None else value]
    return out


def unlink_quietly(client: redis.Redis, key: str) -> None:
    """Remove a staging key now, if Redis answers; if not, its TTL removes it anyway."""
    try:
        client.unlink(key)
    except redis.exceptions.RedisError:
        pass


class StagedChunk:
    """A chunk's staging ``SET`` whose value is sent piece by piece while the request body arrives.

    redis-py sends a command only whole, so this writes the RESP itself on a
    connection of the client's pool: the header with the value's length, each
    piece as it is given, then ``EX`` (and, with ``finish``, the chunk's script
    right behind it) and the reply.  Redis creates the key only when the whole
    command has arrived; if anything goes wrong before that (the body ends
    early, a piece is too many, a checksum does not match, an exception), the
    connection is closed instead, Redis drops the partial command, and nothing
    is stored.  Reported to the client's observer as a ``SET`` and an
    ``EVALSHA``; neither gets an OpenTelemetry span, and neither is retried by
    redis-py's retry policy: a connection lost here is the client's 503, and
    its retry of the chunk is a no-op or stores it.
    """

    def __init__(self, client: redis.Redis, key: str, size: int, ttl: int = STAGING_TTL) -> None:
        self.client = client
        self.key = key
        self.size = size
        self.ttl = ttl
        self.sent = 0
        self._conn = None
        self._ending = None  # (script, keys, args) once send_end sent the SET's end
        self._sent_at = 0.0  # when it did

    def __enter__(self) -> StagedChunk:
        key = self.key.encode()
        self._started = time.perf_counter()
        self._conn = self.client.connection_pool.get_connection()
        try:
            self._conn.send_packed_command([b"*5\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n" % (len(key), key, self.size)], check_health=False)
        except BaseException:
            self._close(broken=True)
            raise
        return self

    def write(self, piece) -> None:
        if self.sent + len(piece) > self.size:
            raise ValueError("more bytes than the staged chunk's size")
        self._conn.send_packed_command([piece], check_health=False)
        self.sent += len(piece)

    def __exit__(self, exc_type, exc, tb) -> None:
        if self._conn is None:
            return  # finished (``finish``)
        if exc_type is not None or self.sent != self.size:
            self._close(broken=True, error=exc)
            return
        self.finish()

    def abandon(self) -> None:
        """Give the ``SET`` up: unfinished, its connection is closed and Redis stores nothing; its end sent
        (``send_end``) and the replies not read, they are dropped with the connection, and whether Redis ran
        the ``SET`` and its script is not known here (the script checks what it changes); finished: no-op."""
        self._close(broken=True)

    def finish(self, script=None, keys=(), args=()):
        """End the ``SET``; with ``script``, send its ``EVALSHA`` right behind it on the same connection.

        One round trip for both instead of two (issue 8: a fixed cost of every
        chunk ``PUT``).  Redis runs the script after the ``SET``; a ``SET`` Redis
        refused leaves no staging key, which the script finds (``staging_lost``)
        before it changes anything.  Returns the script's reply, or runs it
        again through redis-py (``SCRIPT LOAD`` and all) when Redis did not
        have it cached (``NOSCRIPT``)."""
        self.send_end(script, keys, args)
        return self.read_end()

    def send_end(self, script=None, keys=(), args=()) -> None:
        """``finish``'s first half: send the ``SET``'s end (and the script) without waiting for the replies,
        which ``read_end`` reads; meanwhile the connection is this chunk's, and ``abandon`` closes it."""
        conn = self._conn
        if conn is None or self._ending is not None:
            raise RuntimeError("the staged chunk is already finished or closed")
        if self.sent != self.size:
            self._close(broken=True)
            raise ValueError("the staged chunk has not had all its bytes")
        ttl = str(self.ttl).encode()
        tail = [b"\r\n$2\r\nEX\r\n$%d\r\n%s\r\n" % (len(ttl), ttl)]
        if script is not None:
            tail += conn.pack_command("EVALSHA", script.sha, len(keys), *keys, *args)
        self._ending = (script, keys, args)
        try:
            conn.send_packed_command(tail, check_health=False)
        except BaseException as error:
            self._close(broken=True, error=error)
            raise
        self._sent_at = time.perf_counter()

    def read_end(self):
        """``finish``'s second half: the ``SET``'s reply, then the script's (see ``finish``).  Read later than
        sent, the replies may have come long before: the time between is not reported as the commands'."""
        conn, ending = self._conn, self._ending
        if conn is None or ending is None:
            raise RuntimeError("the staged chunk's end was not sent, or is already read")
        script, keys, args = ending
        script_started = time.perf_counter()
        self._started += script_started - self._sent_at
        try:
            reply = conn.read_response()
        except BaseException as error:  # a refused SET too: its script's reply is still on the way, so the connection goes
            self._close(broken=True, error=error)
            raise
        if reply not in (b"OK", "OK", True):
            unexpected = redis.exceptions.ResponseError(f"unexpected reply to a staged SET: {reply!r}")
            self._close(broken=True, error=unexpected)
            raise unexpected
        if script is None:
            self._close(broken=False)
            return None
        self._close(broken=False, release=False)  # the SET is done; the connection waits for the script's reply
        try:
            result = conn.read_response()
        except redis.exceptions.ResponseError as error:  # a whole error reply: the connection is in step
            self._release(conn, broken=False)
            self._observe("EVALSHA", script_started, error)
            if isinstance(error, redis.exceptions.NoScriptError):  # Redis restarted or flushed its scripts
                self.client.script_load(script.script)
                return script(keys=list(keys), args=list(args))
            raise
        except BaseException as error:
            self._release(conn, broken=True)
            self._observe("EVALSHA", script_started, error)
            raise
        self._release(conn, broken=False)
        self._observe("EVALSHA", script_started, None)
        return result

    def _observe(self, command: str, started: float, error: BaseException | None) -> None:
        """Report ``command`` to the client's observer; an error counts only if it is Redis's or the connection's
        (a checksum mismatch that leaves the SET unfinished is the client's, not Redis's)."""
        observer = getattr(self.client, "observer", None)
        if observer is not None:
            counted = error if isinstance(error, (redis.exceptions.RedisError, OSError)) else None
            observer(command, time.perf_counter() - started, counted)

    def _release(self, conn, *, broken: bool) -> None:
        if broken:
            conn.disconnect()  # Redis drops a command it did not receive whole; a reply not read is never read
        self.client.connection_pool.release(conn)

    def _close(self, *, broken: bool, error: BaseException | None = None, release: bool = True) -> None:
        """The SET is over (done, or abandoned with ``broken``): report it; return the connection unless ``release``
        is False (``finish`` still reads the script's reply on it)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if release:
            self._release(conn, broken=broken)
        self._observe("SET", self._started, error)


class FileStore:
    """Uploads, chunks and file metadata in Redis: the keys of one id, in one slot."""

    def __init__(self, client: redis.Redis, *, upload_ttl: int, max_file_bytes: int) -> None:
        self.redis = client
        self.upload_ttl = upload_ttl
        self.max_file_bytes = max_file_bytes
        self._create_upload = client.register_script(_CREATE_UPLOAD)
        self._put_chunk = client.register_script(_PUT_CHUNK)
        self._commit = client.register_script(_COMMIT)
        self._abort = client.register_script(_ABORT)
        self._delete = client.register_script(_DELETE)

    # -- uploads -------------------------------------------------------------
    def create_upload(self, upload_id: str, fields: dict, *, not_after_us: int) -> int:
        """Create a session upload (fenced); returns its deadline (unix s)."""
        result = self._create_upload(
            keys=[upload_key(upload_id), meta_key(upload_id)], args=[not_after_us, self.upload_ttl, *_flat(fields)]
        )
        status = _text(result[0])
        if status == "ok":
            return int(result[1])
        if status == "late":
            raise Late()
        raise ApiError("conflict", "An upload with this id already exists.")

    def stage(self, upload_id: str, index: int, size: int) -> StagedChunk:
        """A staged ``SET`` of chunk ``index``, its ``size`` bytes streamed in; then ``put_chunk(staged=...)``."""
        return StagedChunk(self.redis, staging_key(upload_id, index), size)

    def put_chunk(
        self,
        upload_id: str,
        *,
        owner: str,
        index: int,
        data,
        part: Part,
        now_iso: str,
        total_chunks: int | None = None,
        create_fields: dict | None = None,
        not_after_us: int = 0,
        staged: StagedChunk | None = None,
    ) -> ChunkWrite:
        """Store one chunk's stored bytes ``data`` whose plaintext is ``part``; see the module contract.

        ``create_fields`` creates a seed upload with this chunk (fenced by
        ``not_after_us``); ``total_chunks`` is the seed client's claim, checked
        against the upload's.  ``staged``: the bytes are in this staged ``SET``
        (``stage``), whose end goes with the script in one round trip
        (``StagedChunk.finish``), and ``data`` is ignored.
        """
        if staged is None:
            staging = staging_key(upload_id, index)
            self.redis.set(staging, data, ex=STAGING_TTL)  # the bytes, once, straight into the value they become
        else:
            staging = staged.key
        keys = [upload_key(upload_id), parts_key(upload_id), chunk_key(upload_id, index), meta_key(upload_id), staging]
        args = [
            owner,
            index,
            part.encode(),
            part.size,
            self.upload_ttl,
            now_iso,
            "",
            chunk_prefix(upload_id),
            "1" if create_fields is not None else "0",
            not_after_us,
            "" if total_chunks is None else total_chunks,
            self.max_file_bytes,
            *_flat(create_fields or {}),
        ]
        try:
            result = self._put_chunk(keys=keys, args=args) if staged is None else staged.finish(self._put_chunk, keys, args)
        except redis.exceptions.ResponseError:  # e.g. OOM: the script refused or stopped; the staged bytes go now, not in 60 s
            unlink_quietly(self.redis, staging)
            raise
        status = _text(result[0])
        if status in ("stored", "unchanged"):
            return ChunkWrite(status == "stored", int(result[1]), int(result[2]), int(result[3]))
        if status == "staging_lost":  # a staged SET Redis refused without an error reply, or evicted before the script
            raise ApiError(
                "service_unavailable", "The chunk was lost in storage before it was kept; send it again.", headers={"Retry-After": "1"}
            )
        if status == "not_found":
            raise ApiError("upload_not_found")
        if status == "conflict":
            raise ApiError("chunk_conflict", details={"chunk_index": index})
        if status == "total_mismatch":
            raise ApiError(
                "invalid_chunk", "total_chunks differs from the upload's declared total.", details={"total_chunks": int(result[1])}
            )
        if status == "bad_index":
            raise ApiError("invalid_chunk", "The chunk index is past the upload's last chunk.", details={"total_chunks": int(result[1])})
        if status == "bad_size":
            raise ApiError(
                "invalid_chunk",
                "The chunk's size is not the one this index must have.",
                details={"chunk_index": index, "expected_size": int(result[1]), "size": part.size},
            )
        if status == "too_large":
            raise ApiError(
                "payload_too_large",
                "The upload would exceed the largest file size.",
                details={"max_file_bytes": self.max_file_bytes, "received_bytes": int(result[1])},
            )
        if status == "late":
            raise Late()
        raise ApiError("conflict", "An upload with this id already exists.")

    def get_upload(self, upload_id: str) -> UploadState | None:
        with self.redis.pipeline(transaction=False) as pipe:
            self.queue_upload(pipe, upload_id)
            return self.decode_upload(upload_id, pipe.execute())

    @staticmethod
    def queue_upload(pipe, upload_id: str, *, parts: bool = False) -> None:
        """Add ``get_upload``'s reads to ``pipe`` (and, with ``parts``, the whole part table's)."""
        pipe.hgetall(upload_key(upload_id))
        pipe.hlen(parts_key(upload_id))
        if parts:
            pipe.hgetall(parts_key(upload_id))

    @staticmethod
    def decode_upload(upload_id: str, replies: list) -> UploadState | None:
        raw, count = replies[:2]
        return _decode_upload(upload_id, raw, int(count)) if raw else None

    @staticmethod
    def decode_parts(raw: dict) -> dict[int, Part]:
        return {int(k): Part.decode(v) for k, v in raw.items()}

    def get_part(self, file_id: str, index: int) -> Part | None:
        raw = self.redis.hget(parts_key(file_id), index)
        return Part.decode(raw) if raw else None

    def parts(self, file_id: str) -> dict[int, Part]:
        """The whole part table (an upload's received chunks, or a file's chunk table)."""
        return self.decode_parts(self.redis.hgetall(parts_key(file_id)))

    def chunk_lengths(self, file_id: str, indices: Iterable[int]) -> list[int]:
        """The stored length of each chunk (0: missing), in one round trip."""
        with self.redis.pipeline(transaction=False) as pipe:
            for index in indices:
                pipe.strlen(chunk_key(file_id, index))
            return [int(n) for n in pipe.execute()]

    def missing_chunks(self, upload_id: str, total_chunks: int) -> list[int]:
        """Indices below ``total_chunks`` with no stored part (reads the whole parts hash)."""
        present = {int(i) for i in self.redis.hkeys(parts_key(upload_id))}
        return [i for i in range(total_chunks) if i not in present]

    def commit(
        self, upload_id: str, *, owner: str, total_chunks: int, size: int, meta: dict, expires_ts: int | None, not_after_us: int
    ) -> None:
        """Turn a complete upload into the file ``meta`` atomically (fenced); see the module contract."""
        keys = [upload_key(upload_id), parts_key(upload_id), meta_key(upload_id)]
        args = [owner, not_after_us, total_chunks, size, chunk_prefix(upload_id), expires_ts or 0, MISSING_LIMIT, *_flat(meta)]
        result = self._commit(keys=keys, args=args)
        status = _text(result[0])
        if status == "ok":
            return
        if status == "missing":
            raise ApiError("upload_incomplete", details={"missing": [int(i) for i in result[2]], "missing_count": int(result[1])})
        if status == "size":
            raise ApiError("size_mismatch", details={"declared": size, "stored": int(result[1])})
        if status == "exists":
            raise ApiError("conflict", "This upload was already completed.")
        if status == "late":
            raise Late()
        raise ApiError("upload_not_found")

    def abort(self, upload_id: str, *, owner: str, not_after_us: int) -> None:
        """Remove every key of the upload (fenced); ``upload_not_found`` when it is not ``owner``'s."""
        result = self._abort(keys=[upload_key(upload_id), parts_key(upload_id)], args=[owner, not_after_us, chunk_prefix(upload_id)])
        status = _text(result[0])
        if status == "late":
            raise Late()
        if status != "ok":
            raise ApiError("upload_not_found")

    # -- files ---------------------------------------------------------------
    def delete_file(self, file_id: str, *, not_after_us: int, only_owner: str | None = None) -> tuple[str, int] | None:
        """Remove meta, part table and chunks at once (fenced); (owner, size), or None when there is no such file."""
        result = self._delete(keys=[meta_key(file_id), parts_key(file_id)], args=[not_after_us, chunk_prefix(file_id), only_owner or ""])
        status = _text(result[0])
        if status == "late":
            raise Late()
        if status != "ok":
            return None
        return _text(result[1]), int(result[2])

    def snapshot(self, file_id: str) -> Snapshot:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hgetall(meta_key(file_id))
            pipe.hgetall(upload_key(file_id))
            meta, upload = pipe.execute()
        return Snapshot(_decode_meta(meta), {_text(k): _text(v) for k, v in upload.items()} or None)

    def alive(self, file_ids: list[str]) -> list[bool]:
        """For each id: does a file or an upload with it exist?"""
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.exists(meta_key(file_id), upload_key(file_id))
            return [bool(n) for n in pipe.execute()]

    def file_sizes(self, file_ids: list[str]) -> list[int | None]:
        """For each id: its file's size, or None when there is no such file."""
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.hget(meta_key(file_id), "size")
            return [int(raw) if raw is not None else None for raw in pipe.execute()]

    def get_meta(self, file_id: str) -> dict | None:
        return _decode_meta(self.redis.hgetall(meta_key(file_id)))

    @staticmethod
    def queue_meta(pipe, file_id: str) -> None:
        """Add ``get_meta``'s read to ``pipe`` (its reply goes to ``decode_meta``)."""
        pipe.hgetall(meta_key(file_id))

    @staticmethod
    def decode_meta(raw: dict) -> dict | None:
        return _decode_meta(raw)

    def get_metas(self, file_ids: list[str]) -> list[dict | None]:
        with self.redis.pipeline(transaction=False) as pipe:
            for file_id in file_ids:
                pipe.hgetall(meta_key(file_id))
            return [_decode_meta(raw) for raw in pipe.execute()]

    def fetch_chunks(self, file_id: str, indices: Iterable[int]) -> list[tuple[bytes | None, Part | None]]:
        """Stored bytes and part record of each chunk, each chunk read atomically with its record.

        The bytes come as GETRANGE pieces of READ_PIECE: a reply of a whole
        8 MiB chunk is read about half as fast per byte as 1 MiB ones
        (docs/performance.md).  The first piece, the length and the record come
        in one round trip (as GET and HGET did); a longer chunk's other pieces
        in a MULTI that also checks that length and record did not change in
        between (a tus append rewrites its last chunk): if they did, the chunk
        is read again.
        """
        return [self._fetch_chunk(file_id, index) for index in indices]

    def _fetch_chunk(self, file_id: str, index: int) -> tuple[bytes | None, Part | None]:
        pieces, part = self.fetch_chunk_pieces(file_id, index)
        return (None if pieces is None else b"".join(pieces)), part  # one piece: join hands it back uncopied

    def fetch_chunk_pieces(self, file_id: str, index: int) -> tuple[list[bytes] | None, Part | None]:
        """``fetch_chunks`` for one chunk, its stored bytes as the pieces they were read in (``READ_PIECE`` each,
        the last shorter; one piece when the chunk is no longer): a download sends them on without joining
        them (docs/performance.md, tuning 18)."""
        key, parts = chunk_key(file_id, index), parts_key(file_id)
        for _ in range(3):
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.getrange(key, 0, READ_PIECE - 1)
                pipe.hget(parts, index)
                pipe.strlen(key)
                pipe.exists(key)  # STRLEN is 0 for a missing key and an empty chunk alike
                first, raw_part, size, exists = pipe.execute()
            part = Part.decode(raw_part) if raw_part else None
            if not exists:
                return None, part
            if size <= READ_PIECE:
                return [first], part
            with self.redis.pipeline(transaction=True) as pipe:
                pipe.strlen(key)
                pipe.hget(parts, index)
                for start in range(READ_PIECE, size, READ_PIECE):
                    pipe.getrange(key, start, min(start + READ_PIECE, size) - 1)
                again, raw_again, *rest = pipe.execute()
            if again == size and raw_again == raw_part:
                return [first, *rest], part
        with self.redis.pipeline(transaction=True) as pipe:  # still changing: the whole value in one reply
            pipe.get(key)
            pipe.hget(parts, index)
            data, raw_part = pipe.execute()
        return ([data] if data is not None else None), Part.decode(raw_part) if raw_part else None

    def rename(self, file_id: str, name: str, now_iso: str) -> bool:
        """Set name and updated_at if the file exists; False when it does not."""
        key = meta_key(file_id)

        def change(pipe) -> bool:
            if not pipe.exists(key):
                return False
            pipe.multi()
            pipe.hset(key, mapping={"name": name, "updated_at": now_iso})
            return True

        return self.redis.transaction(change, key, value_from_callable=True)
