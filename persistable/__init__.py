"""persistable: parameter-based persisting and loading of pipeline artifacts.

Subclass :class:`Persistable`, describe the inputs as a :class:`PersistableParams`
dataclass, implement ``_generate_payload`` and call ``load_generate()``: the first
call computes and commits the payload under a key hashed from the params and the keys
of the tracked upstream persistables; every later call, anywhere, loads it.
"""

from typing import TYPE_CHECKING, Any

from persistable._content import Directory, File
from persistable._persistable import Persistable
from persistable._sync import SyncReport, sync
from persistable._version import __version__
from persistable.datasets import DatasetPersistable, checkout, publish
from persistable.io import (
    BytesFileIO,
    FileIO,
    JsonFileIO,
    NpyFileIO,
    NpzFileIO,
    PickleFileIO,
    TextFileIO,
)
from persistable.params import PersistableParams, added_later, untracked
from persistable.run import RunReport, grid, run
from persistable.store import LocalStore, MemoryStore, Store, make_store

if TYPE_CHECKING:
    from persistable.steps import step

__all__ = [
    "BytesFileIO",
    "DatasetPersistable",
    "Directory",
    "File",
    "FileIO",
    "JsonFileIO",
    "LocalStore",
    "MemoryStore",
    "NpyFileIO",
    "NpzFileIO",
    "Persistable",
    "PersistableParams",
    "PickleFileIO",
    "RunReport",
    "Store",
    "SyncReport",
    "TextFileIO",
    "__version__",
    "added_later",
    "checkout",
    "grid",
    "make_store",
    "publish",
    "run",
    "step",
    "sync",
    "untracked",
]


def __getattr__(name: str) -> Any:
    # ``step`` (and the steps package) loads on first use: ``import persistable`` stays fast.
    if name == "step":
        from persistable.steps import step

        globals()["step"] = step
        return step
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
