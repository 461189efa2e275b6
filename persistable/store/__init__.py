"""Stores: the contract, the local / memory / fsspec backends and the router."""

from persistable.store._base import INTERNAL_DIR, METADATA_FILE, Store, Transaction
from persistable.store._fsspec import FsspecStore
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
