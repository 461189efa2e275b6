"""Assemble a flow's output file from rank 0's replica (a copy of the input plus the writes).

When nothing was dropped or deleted the replica is the output and is renamed. Otherwise
its objects are copied into a new file (``h5py`` object copy keeps dtypes, chunking and
compression), so dropped and deleted datasets take no space (HDF5 does not give back
the space of a deleted dataset); subtrees without dropped objects are copied whole.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from persistable.flow._data_manager import is_dropped
from persistable.flow._h5 import h5py

__all__ = ["finish_output", "repack"]

logger = logging.getLogger(__name__)


def _names(fh: Any) -> set[str]:
    names: set[str] = set()
    fh.visit(names.add)
    return names


def _warn_unmatched(drop: Iterable[str], names: set[str]) -> None:
    for name in drop:
        name = name.strip("/")
        if not any(n == name or n.startswith(name + "/") for n in names):
            logger.warning(
                "drop: the output has no object %r, so nothing was dropped for it "
                "(drop names are exact paths, such as hits/tmp)",
                name,
            )


def finish_output(
    replica_path: Path, output_path: Path, drop: Iterable[str], deleted: Iterable[str]
) -> None:
    """Move rank 0's full replica to ``output_path``, rewriting it when objects must go."""
    drop, deleted = list(drop), list(deleted)
    with h5py().File(replica_path, "r") as replica:
        names = _names(replica)
    _warn_unmatched(drop, names)
    if deleted or any(is_dropped(n, drop) for n in names):
        tmp = output_path.with_name(f".{output_path.name}.tmp")
        repack(replica_path, tmp, drop)
        os.replace(tmp, output_path)
        replica_path.unlink()
    else:
        os.replace(replica_path, output_path)


def repack(source_path: str | Path, output_path: str | Path, drop: Iterable[str]) -> None:
    """Write ``output_path`` with the objects of ``source_path`` except the dropped ones."""
    h5 = h5py()
    drop = list(drop)
    with h5.File(source_path, "r") as source, h5.File(output_path, "w") as out:
        removed = {n for n in _names(source) if is_dropped(n, drop)}

        def holds_removed(path: str) -> bool:
            prefix = path + "/"
            return any(r.startswith(prefix) for r in removed)

        def copy(path: str, obj: Any) -> None:
            if isinstance(obj, h5.Dataset) or not holds_removed(path):
                source.copy(obj, out, name=path)  # whole subtrees where nothing goes
                return
            group = out.require_group(path)
            for key, value in obj.attrs.items():
                group.attrs[key] = value
            for child in sorted(obj.keys()):
                if f"{path}/{child}" not in removed:
                    copy(f"{path}/{child}", obj[child])
            if not len(group) and not len(group.attrs):
                del out[path]  # held only dropped objects (or groups that did)

        for key, value in source.attrs.items():
            out.attrs[key] = value
        for root in sorted(source.keys()):
            if root not in removed:
                copy(root, source[root])
