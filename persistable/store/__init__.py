"""Stores: the contract, the local / memory / fsspec backends and the router."""

from typing import TYPE_CHECKING, Any

from persistable.store._base import INTERNAL_DIR, METADATA_FILE, Store, Transaction
from persistable.store._local import LocalStore
from persistable.store._memory import MemoryStore
from persistable.store._router import StoreLike, make_store

__all__ = [
    "INTERNAL_DIR",
    "METADATA_FILE",
    "FsspecStore",
    "LocalStore",
    "MemoryStore",
    "Store",
    "StoreLike",
    "Transaction",
    "make_store",
]

if TYPE_CHECKING:
    from persistable.store._fsspec import FsspecStore


def __getattr__(name: str) -> Any:
    # FsspecStore is imported on first use: most sessions never need it, and
    # `import persistable` stays fast (the router imports it for URLs too).
    if name == "FsspecStore":
        from persistable.store._fsspec import FsspecStore

        return FsspecStore
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
