"""Helpers of the batching tests, importable by worker processes."""

from __future__ import annotations

import os
from typing import Any


def _revive(pid: int) -> PoisonOnLoad:
    if os.getpid() != pid:
        raise RuntimeError("this object cannot be unpickled in another process")
    return PoisonOnLoad()


class PoisonOnLoad:
    """Pickles anywhere, unpickles only in the process that made it."""

    def __init__(self) -> None:
        self.pid = os.getpid()

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return (_revive, (self.pid,))
