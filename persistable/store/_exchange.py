"""Swap two folders in one system call (Linux ``renameat2(RENAME_EXCHANGE)``).

Replacing a committed artifact with a new one must never show readers a moment with
no artifact at all: exchanging the staged folder with the committed one does that.
Where the call is missing (other systems, old kernels, some filesystems) the caller
falls back to two renames.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import cast

__all__ = ["exchange"]

_AT_FDCWD = -100
_RENAME_EXCHANGE = 2


@cache
def _renameat2() -> Callable[[int, bytes, int, bytes, int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return None
    function.argtypes = [
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_int,
        ctypes.c_char_p,
        ctypes.c_uint,
    ]
    function.restype = ctypes.c_int
    return cast("Callable[[int, bytes, int, bytes, int], int]", function)


def exchange(first: Path, second: Path) -> bool:
    """Swap the two existing paths atomically; False when this system cannot."""
    function = _renameat2()
    if function is None:
        return False
    import ctypes

    result = function(
        _AT_FDCWD, os.fsencode(first), _AT_FDCWD, os.fsencode(second), _RENAME_EXCHANGE
    )
    if result == 0:
        return True
    code = ctypes.get_errno()
    if code in (22, 38, 95):  # EINVAL, ENOSYS, EOPNOTSUPP: not supported here
        return False
    raise OSError(code, os.strerror(code), str(second))
