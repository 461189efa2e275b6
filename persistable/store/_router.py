"""One router from what users pass as ``data_dir`` to a :class:`Store`."""

from __future__ import annotations

import os
from typing import Any

from persistable.exceptions import StoreConfigurationError
from persistable.store._base import Store
from persistable.store._local import LocalStore
from persistable.store._memory import MemoryStore

__all__ = ["StoreLike", "make_store"]

StoreLike = Store | str | os.PathLike[str]


def make_store(
    data_dir: StoreLike,
    *,
    storage_options: dict[str, Any] | None = None,
    read_only: bool = False,
) -> Store:
    """Turn ``data_dir`` into a store: a Store is used as is, no scheme or ``file://`` is a
    local folder, ``memory://name`` is a :class:`MemoryStore`, any other URL goes to fsspec.

    Nothing is created or contacted here; the first write creates what is needed.
    """
    if isinstance(data_dir, Store):
        if storage_options:
            raise StoreConfigurationError(
                "storage_options were given with a Store object; pass them to the Store instead."
            )
        return data_dir
    if isinstance(data_dir, os.PathLike):
        return LocalStore(os.fspath(data_dir), read_only=read_only)
    if not isinstance(data_dir, str):
        raise StoreConfigurationError(
            f"data_dir must be a path, a URL string or a Store (got {data_dir!r} that is a "
            f"{type(data_dir).__name__})."
        )
    if not data_dir:
        raise StoreConfigurationError("data_dir is an empty string; pass a folder or a URL.")
    scheme, sep, rest = data_dir.partition("://")
    if not sep or (len(scheme) == 1 and os.name == "nt"):
        return LocalStore(data_dir, read_only=read_only)
    if scheme == "file":
        return LocalStore(rest, read_only=read_only)
    if scheme == "memory" and not storage_options:
        return MemoryStore(rest, read_only=read_only)
    from persistable.store._fsspec import FsspecStore

    # read_only=None lets the store detect anonymous (read-only) access itself.
    return FsspecStore(data_dir, storage_options=storage_options, read_only=read_only or None)
