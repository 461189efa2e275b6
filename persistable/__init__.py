"""persistable: parameter-based persisting and loading of pipeline artifacts.

Subclass :class:`Persistable`, describe the inputs as a :class:`PersistableParams`
dataclass, implement ``_generate_payload`` and call ``load_generate()``: the first
call computes and commits the payload under a key hashed from the params and the keys
of the tracked upstream persistables; every later call, anywhere, loads it.
"""

import sys
import types
from typing import TYPE_CHECKING, Any

from persistable._content import Directory, File
from persistable._persistable import Persistable
from persistable._version import __version__
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
from persistable.store import LocalStore, MemoryStore, Store, make_store

if TYPE_CHECKING:
    from persistable._map import grid
    from persistable._sync import SyncReport, sync
    from persistable.datasets import DatasetPersistable, checkout, publish
    from persistable.run import RunReport, run
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


#: Names whose modules load on first use (``import persistable`` stays fast).
_LAZY = {
    "run": "persistable.run",
    "RunReport": "persistable.run",
    "grid": "persistable._map",
    "step": "persistable.steps",
    "sync": "persistable._sync",
    "SyncReport": "persistable._sync",
    "DatasetPersistable": "persistable.datasets",
    "checkout": "persistable.datasets",
    "publish": "persistable.datasets",
}


#: Subpackages that ``import persistable`` does not load, reachable as attributes all the same.
_LAZY_SUBPACKAGES = frozenset({"artifact"})


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None and name not in _LAZY_SUBPACKAGES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    if module is None:
        return importlib.import_module(f"{__name__}.{name}")  # binds itself as the attribute
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


class _Package(types.ModuleType):
    """This package's module: ``persistable.run`` is the function, never the subpackage.

    Importing a subpackage binds it as an attribute of its parent once loaded; the
    runner's subpackage has the name of the function it exports, and loads on first
    use (``import persistable`` stays fast), possibly through ``import persistable.run``
    or ``from persistable.run import resolve``: the function is bound instead.
    """

    def __setattr__(self, name: str, value: Any) -> None:
        if name == "run" and isinstance(value, types.ModuleType):
            value = value.run
        super().__setattr__(name, value)


sys.modules[__name__].__class__ = _Package
