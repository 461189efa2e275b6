"""Warnings that point at the user's line, not into the library."""

from __future__ import annotations

import os
import sys
import warnings
from types import FrameType

__all__ = ["warn_at_caller"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_at_caller(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` with the stack level of the first frame outside this package.

    One warning, shown once per place in the user's code (the default filter), and
    attributed to the user's call of ``load_generate()`` or ``load()``.
    """
    frame: FrameType | None = sys._getframe(0)
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(_PACKAGE):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
