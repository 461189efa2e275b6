"""Hashing: canonical JSON bytes to a key (SHA-256), bulk bytes to a fast digest (xxh3-128)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import IO, TYPE_CHECKING, Any

import xxhash

if TYPE_CHECKING:
    from _typeshed import ReadableBuffer

__all__ = [
    "KEY_SCHEME",
    "BulkHasher",
    "bulk_digest",
    "canonical_json",
    "hash_stream",
    "key_from_tree",
    "sha256_hex",
]

#: Version of the key scheme. It is written into every key (``"k1-…"``) and every
#: ``metadata.json``; any change of the canonical encoding must bump it.
KEY_SCHEME = 1

#: Name of the fast digest used for bulk bytes (array params, payload files).
BULK_ALGORITHM = "xxh3_128"

_CHUNK = 1 << 22


def _not_json(value: Any) -> Any:
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _c_encoder() -> Callable[[Any, int], list[str]] | None:
    """The C encoder that ``json.dumps`` uses for :func:`canonical_json`'s options, built once.

    ``json.dumps`` with non-default options builds a ``JSONEncoder`` and this same C
    encoder on every call; a key is hashed several times per cached load, so the encoder
    is made once. No ``markers`` (cycle check): a cyclic tree raises RecursionError,
    and :func:`canonical_json` then lets ``json.dumps`` say what it says.
    """
    make: Any = getattr(json.encoder, "c_make_encoder", None)
    quote: Any = getattr(json.encoder, "c_encode_basestring", None)
    if make is None or quote is None:
        return None
    encoder: Callable[[Any, int], list[str]] = make(
        None, _not_json, quote, None, ":", ",", True, False, False
    )
    return encoder


_ENCODER = _c_encoder()


def canonical_json(tree: Any) -> bytes:
    """Serialise an already-canonical tree into its one byte form.

    Keys sorted, no whitespace, UTF-8, NaN and infinities refused (the encoder in
    :mod:`persistable.params` tags them before they get here). The bytes are those of
    ``json.dumps(tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
    allow_nan=False)``, whose C encoder is called directly.
    """
    if _ENCODER is not None:
        try:
            text = "".join(_ENCODER(tree, 0))
        except RecursionError:
            text = _dumps(tree)  # a cycle: json.dumps's own ValueError
    else:
        text = _dumps(tree)
    return text.encode(
        "utf-8", "surrogatepass"
    )  # lone surrogates (os.fsdecode'd names) stay distinct


def _dumps(tree: Any) -> str:
    return json.dumps(
        tree, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    )


def sha256_hex(data: bytes) -> str:
    """The SHA-256 of ``data`` in hex digits."""
    import hashlib  # loads OpenSSL: on first use, not with ``import persistable``

    return hashlib.sha256(data).hexdigest()


def key_from_tree(tree: Any) -> str:
    """The key of a canonical tree: ``k<scheme>-`` and the SHA-256 of its canonical JSON."""
    return f"k{KEY_SCHEME}-{sha256_hex(canonical_json(tree))}"


def bulk_digest(data: ReadableBuffer) -> str:
    """xxh3-128 hex digest of bulk bytes (any C-contiguous buffer: its bytes in order)."""
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
