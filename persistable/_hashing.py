"""Hashing: canonical JSON bytes to a key (SHA-256), bulk bytes to a fast digest (xxh3-128)."""

from __future__ import annotations

import hashlib
import json
from typing import IO, Any

import xxhash

__all__ = [
    "KEY_SCHEME",
    "BulkHasher",
    "bulk_digest",
    "canonical_json",
    "hash_stream",
    "key_from_tree",
]

#: Version of the key scheme. It is written into every key (``"k1-…"``) and every
#: ``metadata.json``; any change of the canonical encoding must bump it.
KEY_SCHEME = 1

#: Name of the fast digest used for bulk bytes (array params, payload files).
BULK_ALGORITHM = "xxh3_128"

_CHUNK = 1 << 22


def canonical_json(tree: Any) -> bytes:
    """Serialise an already-canonical tree into its one byte form.

    Keys sorted, no whitespace, UTF-8, NaN and infinities refused (the encoder in
    :mod:`persistable.params` tags them before they get here).
    """
    return json.dumps(
        tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode("utf-8", "surrogatepass")  # lone surrogates (os.fsdecode'd names) stay distinct


def key_from_tree(tree: Any) -> str:
    """The key of a canonical tree: ``k<scheme>-`` and the SHA-256 of its canonical JSON."""
    return f"k{KEY_SCHEME}-{hashlib.sha256(canonical_json(tree)).hexdigest()}"


def bulk_digest(data: bytes | bytearray | memoryview) -> str:
    """xxh3-128 hex digest of bulk bytes."""
    return xxhash.xxh3_128_hexdigest(data)


class BulkHasher:
    """Incremental xxh3-128 with a byte count, fed while a file is written or read."""

    __slots__ = ("_hash", "size")

    def __init__(self) -> None:
        self._hash = xxhash.xxh3_128()
        self.size = 0

    def update(self, data: bytes | bytearray | memoryview) -> None:
        self._hash.update(data)
        self.size += memoryview(data).nbytes

    def hexdigest(self) -> str:
        return str(self._hash.hexdigest())


def hash_stream(stream: IO[bytes], hasher: BulkHasher | None = None) -> BulkHasher:
    """Feed the rest of a binary stream into ``hasher`` (a new one by default) and return it."""
    hasher = BulkHasher() if hasher is None else hasher
    while chunk := stream.read(_CHUNK):
        hasher.update(chunk)
    return hasher
