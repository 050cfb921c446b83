"""Pure checks of client-supplied values: ids, names, MIME types, checksums, base64, cursors.

No Flask and no Redis here; every function raises ``ApiError`` with a code
from the shared catalogue, or returns the normalised value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import itertools
import mimetypes
import re
import unicodedata

from redfile_common.errors import ApiError

FILE_ID = re.compile(r"^[0-9a-f]{32}$")
SHA256_HEX = re.compile(r"^[0-9a-fA-F]{64}$")
MAX_MIME_LENGTH = 255
DEFAULT_MIME_TYPE = "application/octet-stream"

# RFC 9110 token and quoted-string; ASCII only, so a stored type is always a safe header value.
_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[\t\x20\x21\x23-\x5b\x5d-\x7e]|\\[\t\x20-\x7e])*"'
_MIME = re.compile(rf"^({_TOKEN})/({_TOKEN})((?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*)[ \t]*$")
# What validate_mime_type takes, for the documents: empty (the default), or a type with whitespace around it
MIME_PATTERN = rf"^(?:\s*{_TOKEN}/{_TOKEN}(?:[ \t]*;[ \t]*{_TOKEN}=(?:{_TOKEN}|{_QUOTED}))*\s*)?$"
SHA256_PATTERN = r"^(?:[0-9a-fA-F]{64})?$"  # parse_sha256: empty is none
# validate_username (a username named by another service): 1-128 characters, no control characters or braces
OWNER_PATTERN = r"^[^\u0000-\u001f{}\ufffd]{1,128}$"

# Bidi embedding/override/isolate marks and line/paragraph separators: they let a name
# display as something it is not ("invoice\u202efdp.exe").
_SPOOFING = set("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u2028\u2029")
# What draws nothing: format characters (U+200B, U+FEFF, joiners), spaces, lone combining marks,
# and the letters and symbols that are blank by design.  A name of these only is one nobody can see.
_INVISIBLE_CATEGORIES = frozenset({"Cf", "Zs", "Zl", "Zp", "Mn", "Me"})
_BLANK = set("\u115f\u1160\u3164\uffa0\u2800\u034f")


def _is_control(ch: str) -> bool:
    return unicodedata.category(ch) in ("Cc", "Cs") or ch in _SPOOFING or ch == "\ufffd"


def is_invisible(text: str) -> bool:
    """True when no character of ``text`` draws anything (an empty text included)."""
    return all(unicodedata.category(ch) in _INVISIBLE_CATEGORIES or ch in _BLANK or ch.isspace() for ch in text)


def is_file_id(value: object) -> bool:
    return isinstance(value, str) and FILE_ID.match(value) is not None


def validate_name(name: object, max_bytes: int = 255) -> str:
    """A file name we can store and later put in a header: see the rules in the messages below."""

    def bad(reason: str) -> ApiError:
        return ApiError("invalid_name", f"The name is not allowed: {reason}.")

    if not isinstance(name, str) or name == "":
        raise bad("it must be a non-empty string")
    if name in (".", ".."):
        raise bad("'.' and '..' are reserved")
    if not name.strip(". "):  # "...", ". .": a path segment to some tools, an empty name to others
        raise bad("it must not be only dots and spaces")
    if "/" in name or "\\" in name:
        raise bad("it must not contain '/' or '\\'")
    if name != name.strip():
        raise bad("it must not start or end with whitespace")
    if any(_is_control(ch) for ch in name):
        raise bad("it must not contain control characters")
    if is_invisible(name.replace(".", "")):  # "\u200b", "..\u200b": nothing a reader can see
        raise bad("it must hold at least one visible character")
    if "\ufffd" in name:  # what a decoder puts for bytes that were not UTF-8 (a form, a multipart filename)
        raise bad("it must be valid UTF-8 (it holds U+FFFD, the replacement character)")
    try:
        size = len(name.encode("utf-8"))
    except UnicodeEncodeError:  # pragma: no cover - surrogates are rejected above
        raise bad("it must be valid Unicode") from None
    if size > max_bytes:
        raise bad(f"it must be at most {max_bytes} bytes in UTF-8")
    return name


MAX_FOLDER_DEPTH = 32  # segments below the root: each level is a count to keep per file (docs/architecture.md)
MAX_FOLDER_BYTES = 1024  # UTF-8 bytes of the whole path
ROOT_FOLDER = "/"


def validate_folder(folder: object, default: str | None = None) -> str:
    """A folder: ``/`` or ``/segment[/segment...]``, each segment a valid name (``validate_name``), bounded in depth
    and length.  None (not given) is ``default`` when there is one."""
    if folder is None and default is not None:
        return default

    def bad(reason: str) -> ApiError:
        return ApiError("invalid_folder", f"The folder is not allowed: {reason}.")

    if not isinstance(folder, str) or not folder.startswith("/"):
        raise bad("it must be an absolute path, starting with '/'")
    if folder == ROOT_FOLDER:
        return folder
    if len(folder.encode("utf-8", "surrogatepass")) > MAX_FOLDER_BYTES:
        raise bad(f"it must be at most {MAX_FOLDER_BYTES} bytes in UTF-8")
    segments = folder[1:].split("/")
    if len(segments) > MAX_FOLDER_DEPTH:
        raise bad(f"it must be at most {MAX_FOLDER_DEPTH} folders deep")
    for segment in segments:
        if segment == "":
            raise bad("it must not hold an empty segment ('//' or a trailing '/')")
        try:
            validate_name(segment, MAX_FOLDER_BYTES)
        except ApiError as exc:
            raise bad("each segment must be a valid name (" + exc.message.split(": ", 1)[-1].rstrip(".") + ")") from None
    return folder


def folder_key(folder: str) -> str:
    """A folder as the owner's name index keys it: with a trailing ``/``, so a folder's key is a prefix of exactly its
    subtree's (``/a/`` of ``/a/b/``, not of ``/ab/``)."""
    return folder if folder == ROOT_FOLDER else folder + "/"


def _char_class(chars: list[int]) -> str:
    """A regex character class body for these code points, as ranges (escaped: valid in Python and ECMA-262)."""
    out, i = [], 0
    while i < len(chars):
        j = i
        while j + 1 < len(chars) and chars[j + 1] == chars[j] + 1:
            j += 1
        for k, cp in ((0, chars[i]), (1, chars[j])):
            if k == 1 and j == i:
                break
            if k == 1:
                out.append("-")
            out.append(f"\\u{cp:04x}" if cp <= 0xFFFF else chr(cp))
        i = j + 1
    return "".join(out)


@functools.cache
def name_pattern() -> str:
    """The rules of ``validate_name`` but its byte limit, as one regular expression (for the OpenAPI documents).

    Made from the same predicates by walking the code points once, so the document and the
    check cannot drift; tests/unit/files/test_validation.py holds them equal.  A name is an
    optional edge (not whitespace) and anything allowed, around one visible character.  Each
    class is written as what it excludes: short, and quick for a generator (schemathesis) to draw from.
    """
    slashes = {ord(c) for c in "/\\"}
    forbidden, not_edge, not_visible = [], [], []
    # beyond plane 3 only plane 14 holds anything but unassigned and private-use code points (all visible)
    # surrogates are left out: no JSON text holds one alone, and regex engines (Rust's) refuse them in a class
    for cp in itertools.chain(range(0xD800), range(0xE000, 0x40000), range(0xE0000, 0xE1000)):
        ch = chr(cp)
        if cp in slashes or _is_control(ch):
            forbidden.append(cp)
            not_edge.append(cp)
            not_visible.append(cp)
        elif ch.isspace():
            not_edge.append(cp)
            not_visible.append(cp)
        elif ch == "." or is_invisible(ch):
            not_visible.append(cp)
    a, e, v = (f"[^{_char_class(cps)}]" for cps in (forbidden, not_edge, not_visible))
    return f"^(?:{e}{a}*)?{v}(?:{a}*{e})?$"


def validate_mime_type(value: object) -> str:
    """``type/subtype`` with optional ``; name=value`` parameters; type and subtype lower-cased."""
    if value is None or value == "":
        return DEFAULT_MIME_TYPE
    if not isinstance(value, str) or len(value) > MAX_MIME_LENGTH:
        raise ApiError("invalid_mime_type")
    match = _MIME.match(value.strip())
    if match is None:
        raise ApiError("invalid_mime_type")
    kind, subtype, params = match.groups()
    return f"{kind.lower()}/{subtype.lower()}{params}"


def lenient_mime_type(value: str | None, name: str = "") -> str:
    """A MIME type sent implicitly (a multipart part's Content-Type, tus metadata): kept when valid and more than
    the generic default, else guessed from ``name``."""
    try:
        found = validate_mime_type(value)
    except ApiError:
        found = DEFAULT_MIME_TYPE
    return found if found != DEFAULT_MIME_TYPE else guess_mime_type(name)


# The common kinds of file Python's own table (3.11) lacks, as file managers know them.
_MORE_TYPES = {
    "text/markdown": (".md", ".markdown"),
    "application/yaml": (".yaml", ".yml"),
    "application/toml": (".toml",),
    "application/jsonl": (".jsonl", ".ndjson"),
    "text/plain": (".log",),
    "video/x-matroska": (".mkv",),
    "audio/flac": (".flac",),
    "audio/ogg": (".ogg", ".oga"),
    "audio/mp4": (".m4a",),
    "application/epub+zip": (".epub",),
    "application/x-7z-compressed": (".7z",),
    "application/vnd.rar": (".rar",),
}


@functools.cache
def _known_types() -> mimetypes.MimeTypes:
    """Python's own table of extensions, not the machine's (/etc/mime.types): the same guess on every host."""
    table = mimetypes.MimeTypes()
    for kind, extensions in _MORE_TYPES.items():
        for extension in extensions:
            table.add_type(kind, extension)
    return table


def guess_mime_type(name: str | None) -> str:
    """The type a file of this name usually has (``hello.txt``: text/plain), else the default."""
    guessed, _ = _known_types().guess_type(name or "", strict=False)
    return guessed or DEFAULT_MIME_TYPE


def mime_type_for(name: str, value: object) -> str:
    """A file's MIME type: ``value`` when the client gave one (validated), else guessed from ``name``."""
    if value is None or value == "":
        return guess_mime_type(name)
    return validate_mime_type(value)


def parse_sha256(value: object, field: str = "sha256") -> str | None:
    """An optional hex SHA-256 from the client, lower-cased; anything else is a validation error."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or SHA256_HEX.match(value) is None:
        raise ApiError("validation_error", details={"fields": {field: ["Must be 64 hexadecimal characters."]}})
    return value.lower()


def decode_base64(value: object) -> bytes:
    """Standard or URL-safe alphabet; padding optional; ASCII whitespace (line wrapping) ignored."""
    if not isinstance(value, str):
        raise ApiError("invalid_base64", "The data must be a base64 string.")
    text = "".join(value.split())
    if "-" in text or "_" in text:
        text = text.replace("-", "+").replace("_", "/")
    if len(text) % 4 == 1:
        raise ApiError("invalid_base64")
    text += "=" * (-len(text) % 4)
    try:
        return base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ApiError("invalid_base64") from None


def encode_cursor(score: int, member: str) -> str:
    return base64.urlsafe_b64encode(f"{score}:{member}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str | None) -> tuple[int, str] | None:
    """The opaque page cursor back into (score, file id); a malformed one is a validation error."""
    if not cursor:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode("ascii")
        score, member = raw.split(":", 1)
        if not score.isdigit() or len(score) > 16 or not is_file_id(member):
            raise ValueError
        return int(score), member
    except (ValueError, UnicodeDecodeError, binascii.Error):
        raise ApiError("validation_error", "The cursor is not valid.", details={"query": {"cursor": ["Not a valid cursor."]}}) from None


def validate_username(username: str) -> str:
    """A username named in a path (the admin's calls): 1-128 characters, no control characters or braces (Redis hash tags)."""
    # U+FFFD: the path held bytes that are not UTF-8 (%ff), which no username does
    if not 1 <= len(username) <= 128 or any(ord(ch) < 0x20 or ch in "{}\ufffd" for ch in username):
        raise ApiError("validation_error", "Not a valid username.", details={"path": {"username": ["Not a valid username."]}})
    return username


@functools.cache
def folder_pattern() -> str:
    """The rules of ``validate_folder`` but its byte limit, as one regular expression (for the OpenAPI documents):
    ``/``, or 1 to ``MAX_FOLDER_DEPTH`` segments, each ``/`` and a name (``name_pattern``)."""
    segment = name_pattern()[1:-1]
    return f"^(?:/|(?:/{segment}){{1,{MAX_FOLDER_DEPTH}}})$"
