"""Encryption at rest: AES-256-GCM per chunk, a data key per file, master keys that rotate.

* Each file (each upload, from its first request) gets a random 256-bit data
  key.  It is stored only wrapped: sealed with AES-256-GCM under the first
  master key of ``ENCRYPTION_KEYS`` as ``<kid>:<base64(nonce | ciphertext | tag)>``,
  with the file id as associated data.  Every master key in the setting can
  unwrap, so a master key is rotated by putting a new one first: new files use
  it, old files stay readable, and nothing is re-encrypted.  Drop an old key
  only when no file wrapped by it is left: ``redfile-rekey`` (``rekey.py``)
  re-wraps every file's data key under the first master key -- only the few
  dozen bytes of the wrapped key change, never a chunk, because the data key
  itself stays the same.
* Each chunk is stored as ``nonce (12) | ciphertext | tag (16)``: 28 bytes more
  than the plaintext, with a fresh random nonce per write.  Its associated data
  is ``file id`` and ``chunk index``, so a chunk moved to another index or file
  fails to open, as does any changed byte.
* ``NullSealer`` is the same interface without encryption (no key configured,
  or a file stored before encryption was switched on).

Opening a tampered chunk raises ``ChunkCorrupt``; callers never see its bytes.
"""

from __future__ import annotations

import base64
import binascii
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

NONCE_BYTES = 12
TAG_BYTES = 16
SEAL_OVERHEAD = NONCE_BYTES + TAG_BYTES


class ChunkCorrupt(Exception):
    """A stored chunk failed its integrity check (GCM tag or CRC32C)."""

    def __init__(self, index: int, reason: str = "integrity check failed") -> None:
        self.index = index
        super().__init__(f"chunk {index}: {reason}")


@dataclass(frozen=True)
class MasterKey:
    kid: str
    key: bytes


def parse_master_keys(raw: str) -> list[MasterKey]:
    """``kid:base64key[,kid:base64key...]``, each key 32 bytes; ``""`` is no encryption.

    Raises ``ValueError`` with a message that names the problem but never a key.
    """
    keys: list[MasterKey] = []
    for item in (part.strip() for part in (raw or "").split(",")):
        if not item:
            continue
        kid, sep, b64 = item.partition(":")
        kid = kid.strip()
        if not sep or not kid or ":" in kid:
            raise ValueError("ENCRYPTION_KEYS: each entry must be 'kid:base64key'")
        if any(k.kid == kid for k in keys):
            raise ValueError(f"ENCRYPTION_KEYS: key id {kid!r} appears twice")
        try:
            key = base64.b64decode(b64.strip(), validate=True)
        except (binascii.Error, ValueError):
            raise ValueError(f"ENCRYPTION_KEYS: key {kid!r} is not valid base64") from None
        if len(key) != 32:
            raise ValueError(f"ENCRYPTION_KEYS: key {kid!r} must be 32 bytes (AES-256)")
        keys.append(MasterKey(kid, key))
    return keys


def _chunk_aad(file_id: str, index: int) -> bytes:
    return f"redfile-chunk:{file_id}:{index}".encode()


def _dek_aad(file_id: str) -> bytes:
    return f"redfile-dek:{file_id}".encode()


def wrapping_kid(wrapped: str | None) -> str:
    """The id of the master key that wrapped a stored data key ("" for a file stored in the clear)."""
    return (wrapped or "").partition(":")[0]


class NullSealer:
    """Chunks stored as they are."""

    encrypted = False

    def seal(self, index: int, data) -> bytes | memoryview:
        return data

    def open(self, index: int, stored: bytes) -> bytes:
        return stored


class ChunkSealer:
    """AES-256-GCM with one file's data key; see the module docstring for the format."""

    encrypted = True

    def __init__(self, data_key: bytes, file_id: str) -> None:
        self._aead = AESGCM(data_key)
        self.file_id = file_id

    def seal(self, index: int, data) -> bytes:
        nonce = os.urandom(NONCE_BYTES)
        return nonce + self._aead.encrypt(nonce, data, _chunk_aad(self.file_id, index))

    def open(self, index: int, stored: bytes) -> bytes:
        if len(stored) < SEAL_OVERHEAD:
            raise ChunkCorrupt(index, "too short to be a sealed chunk")
        view = memoryview(stored)
        try:
            return self._aead.decrypt(view[:NONCE_BYTES], view[NONCE_BYTES:], _chunk_aad(self.file_id, index))
        except InvalidTag:
            raise ChunkCorrupt(index, "authentication failed") from None


class Encryption:
    """The master keys; makes and opens per-file data keys."""

    def __init__(self, keys: list[MasterKey]) -> None:
        self.keys = {k.kid: k for k in keys}
        self.current = keys[0] if keys else None

    @property
    def enabled(self) -> bool:
        return self.current is not None

    def new_wrapped_key(self, file_id: str) -> str:
        """A fresh data key for ``file_id``, wrapped by the current master key ("" when off)."""
        if self.current is None:
            return ""
        return self._wrap(file_id, os.urandom(32))

    def _wrap(self, file_id: str, data_key: bytes) -> str:
        assert self.current is not None
        nonce = os.urandom(NONCE_BYTES)
        sealed = AESGCM(self.current.key).encrypt(nonce, data_key, _dek_aad(file_id))
        return f"{self.current.kid}:{base64.b64encode(nonce + sealed).decode()}"

    def unwrap(self, file_id: str, wrapped: str) -> bytes:
        """The data key of a file.

        Raises ``ChunkCorrupt(-1)`` when the wrapped key names an unknown
        master key or does not open (a key was removed too early, or tampering).
        """
        kid, _, b64 = wrapped.partition(":")
        master = self.keys.get(kid)
        if master is None:
            raise ChunkCorrupt(-1, f"the file's data key is wrapped by master key {kid!r}, which is not configured")
        try:
            blob = base64.b64decode(b64, validate=True)
            return AESGCM(master.key).decrypt(blob[:NONCE_BYTES], blob[NONCE_BYTES:], _dek_aad(file_id))
        except (InvalidTag, binascii.Error, ValueError):
            raise ChunkCorrupt(-1, "the file's data key does not open") from None

    def needs_rewrap(self, wrapped: str | None) -> bool:
        """Is this stored data key wrapped by a master key other than the current one?"""
        return bool(wrapped) and self.current is not None and wrapping_kid(wrapped) != self.current.kid

    def rewrap(self, file_id: str, wrapped: str) -> str:
        """The same data key, wrapped by the current master key (a fresh nonce).

        The chunks stay as they are: they are sealed with the data key, which
        does not change.  Raises ``ChunkCorrupt(-1)`` as ``unwrap`` does, and
        ``ValueError`` when encryption is off (there is no key to wrap with).
        """
        if self.current is None:
            raise ValueError("ENCRYPTION_KEYS is empty: there is no master key to re-wrap with")
        return self._wrap(file_id, self.unwrap(file_id, wrapped))

    def sealer(self, file_id: str, wrapped: str | None):
        """The sealer for a file: ``NullSealer`` when it has no data key.

        Raises ``ChunkCorrupt(-1)`` when the wrapped key names an unknown
        master key or does not open (a key was removed too early, or tampering).
        """
        if not wrapped:
            return NullSealer()
        return ChunkSealer(self.unwrap(file_id, wrapped), file_id)
