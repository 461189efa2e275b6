"""``dict_almost_equal``: 1.x's tolerant comparison of two nested dicts."""

from __future__ import annotations

import logging
from typing import Any

__all__ = ["dicts_almost_equal"]

logger = logging.getLogger("persistable")


def dicts_almost_equal(
    first: dict[Any, Any], second: dict[Any, Any], *, rtol: float, atol: float, verbose: bool
) -> bool:
    """Same keys; nested dicts recursively, floats and arrays up to ``rtol``/``atol``, the rest by ``==``."""
    import numpy as np

    if first.keys() != second.keys():
        return False
    for key, value in first.items():
        other = second[key]
        if isinstance(value, dict):
            same = isinstance(other, dict) and dicts_almost_equal(
                value, other, rtol=rtol, atol=atol, verbose=False
            )
        elif isinstance(value, float):
            same = bool(np.isclose(value, other, rtol=rtol, atol=atol, equal_nan=True))
        elif isinstance(value, np.ndarray):
            same = bool(np.allclose(value, other, rtol=rtol, atol=atol))
        else:
            same = bool(value == other)
        if not same:
            if verbose:
                logger.warning("%s: %r != %r (rtol=%s, atol=%s)", key, value, other, rtol, atol)
            return False
    return True
