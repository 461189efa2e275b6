"""Watching stages and resources for state kept across chunks (which a resume would lose).

A resumed loop replays the journaled writes of the finished steps without running the
stages, so an object whose attributes changed during those steps (a running total, a
histogram, a counter) would enter the remaining steps and ``finish`` with the state of
a fresh object: a silently wrong output. Every step, each stage's and resource's own
attributes are digested (numpy arrays by their bytes, other values by their pickle)
and compared with their digests after ``init``; the first change is recorded in the
journal, and a rerun of that journal starts over instead of resuming. A change after
the resume point is harmless: up to there the state equalled a fresh object's.
"""

from __future__ import annotations

import pickle
from typing import Any

import numpy as np

from persistable._hashing import bulk_digest

__all__ = ["StateWatch"]

#: Attributes the base classes set (the same for every chunk).
_BASE_ATTRIBUTES = frozenset(
    {
        "name",
        "classname",
        "data_manager",
        "requires",
        "comm",
        "rank",
        "size",
        "params",
        "dset_name",
        "input_filename",
        "start_position",
        "end_position",
    }
)


def _digest(value: Any) -> str:
    try:
        if isinstance(value, np.ndarray) and not value.dtype.hasobject:
            data = np.ascontiguousarray(value).reshape(-1)
            return f"{value.dtype!s}{value.shape}{bulk_digest(data.view(np.uint8).data)}"
        return bulk_digest(pickle.dumps(value, protocol=5))
    except Exception:  # an open file, a lock, an HDF5 handle: by identity and size
        size = len(value) if hasattr(value, "__len__") else None
        return f"{type(value).__qualname__}@{id(value)}/{size}"


def _digests(obj: Any) -> dict[str, str]:
    return {
        name: _digest(value) for name, value in vars(obj).items() if name not in _BASE_ATTRIBUTES
    }


class StateWatch:
    """The attribute digests of ``objects`` (label, object) as they were after ``init``."""

    def __init__(self, objects: list[tuple[str, Any]]) -> None:
        self._objects = objects
        self._baseline = {label: _digests(obj) for label, obj in objects}

    def changed(self) -> str | None:
        """``"<label> changed self.<attribute>"`` for the first change since ``init``, or None."""
        for label, obj in self._objects:
            now, before = _digests(obj), self._baseline[label]
            for name in sorted(set(now) | set(before)):
                if now.get(name) != before.get(name):
                    return f"{label} changed self.{name}"
        return None
