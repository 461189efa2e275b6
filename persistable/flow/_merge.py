"""Assemble a flow's output file: the input's objects, overlaid by the replica's, minus drops.

Objects are copied into a new file (``h5py`` object copy keeps dtypes, chunking and
compression), so dropped datasets are never written and take no space; subtrees
without dropped or overridden objects are copied whole.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from persistable.flow._data_manager import is_dropped
from persistable.flow._h5 import h5py

__all__ = ["merge_output"]

logger = logging.getLogger(__name__)


def _names(fh: Any) -> set[str]:
    names: set[str] = set()
    fh.visit(names.add)
    return names


def merge_output(
    input_path: str | Path | None,
    replica_path: str | Path,
    output_path: str | Path,
    drop: Iterable[str],
    deleted: Iterable[str] = (),
) -> None:
    """Write ``output_path`` from the input file and the replica (replica objects win)."""
    h5 = h5py()
    drop = list(drop)
    deleted = [d.strip("/") for d in deleted]

    def gone(path: str) -> bool:
        return is_dropped(path, drop) or any(path == d or path.startswith(d + "/") for d in deleted)

    with h5.File(replica_path, "r") as replica, h5.File(output_path, "w") as out:
        source = h5.File(input_path, "r") if input_path is not None else None
        try:
            in_names = _names(source) if source is not None else set()
            rep_names = _names(replica)
            all_names = in_names | rep_names
            removed = {n for n in all_names if gone(n)}
            for name in drop:
                if not any(
                    n == name.strip("/") or n.startswith(name.strip("/") + "/") for n in all_names
                ):
                    logger.warning(
                        "drop: the output has no object %r, so nothing was dropped for it "
                        "(drop names are exact paths, such as hits/tmp)",
                        name,
                    )
            # Objects whose subtree must be merged item by item (not copied whole).
            special = removed | (in_names & rep_names)

            def needs_walk(path: str) -> bool:
                prefix = path + "/"
                return any(s.startswith(prefix) for s in special)

            def copy_attrs(src: Any, dst: Any) -> None:
                for key, value in src.attrs.items():
                    dst.attrs[key] = value

            def merge(path: str) -> None:
                in_obj = source.get(path) if source is not None and path in in_names else None
                rep_obj = replica.get(path) if path in rep_names else None
                if in_obj is not None and isinstance(in_obj, h5.Dataset) and rep_obj is None:
                    in_obj.file.copy(in_obj, out, name=path)
                    return
                if rep_obj is not None and isinstance(rep_obj, h5.Dataset):
                    replica.copy(rep_obj, out, name=path)
                    return
                if not needs_walk(path) and (in_obj is None) != (rep_obj is None):
                    obj: Any = in_obj if in_obj is not None else rep_obj
                    obj.file.copy(obj, out, name=path)
                    return
                group = out.require_group(path)
                children: set[str] = set()
                for obj in (in_obj, rep_obj):
                    if obj is not None:
                        copy_attrs(obj, group)
                        children.update(obj.keys())
                kept = [c for c in sorted(children) if f"{path}/{c}" not in removed]
                for child in kept:
                    merge(f"{path}/{child}")
                if children and not kept and not len(group.attrs):
                    del out[path]  # held only dropped objects

            roots: set[str] = set()
            for fh in (source, replica):
                if fh is not None:
                    copy_attrs(fh, out)
                    roots.update(fh.keys())
            for root in sorted(roots):
                if root not in removed:
                    merge(root)
        finally:
            if source is not None:
                source.close()
