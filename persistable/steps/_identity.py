"""A step's identity: its payload name and the choices of what a code change does.

A step's payload name is the module and qualified name of its function
(``mylab.features.smooth``), or only the qualified name for a function of
``__main__`` (a script or a notebook): the same function defined in another script or
notebook then finds the same artifacts. Lambdas and local closures have no name that
another process could find again, so they are refused unless ``payload_name`` is given.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any, Literal

from persistable.steps._errors import StepDefinitionError

__all__ = ["CODE_CHANGES", "CodeChanges", "default_payload_name"]

CodeChanges = Literal["rerun", "warn", "ignore"]
CODE_CHANGES: tuple[str, ...] = ("rerun", "warn", "ignore")

_NOT_A_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


def default_payload_name(func: Callable[..., Any]) -> str:
    """``module.qualname`` of ``func`` (only ``qualname`` in ``__main__``); refuses lambdas and closures."""
    qualname = getattr(func, "__qualname__", None)
    module = getattr(func, "__module__", None)
    if not isinstance(qualname, str) or not isinstance(module, str):
        raise StepDefinitionError(
            f"{func!r:.80} has no __qualname__/__module__, so its artifacts could not be found "
            "again by another process; pass payload_name='...' to @step."
        )
    if "<lambda>" in qualname or "<locals>" in qualname:
        kind = "a lambda" if "<lambda>" in qualname else "a function defined inside a function"
        raise StepDefinitionError(
            f"{module}.{qualname} is {kind}, which has no stable identity that another process "
            "could find again; define it at module level, or pass payload_name='...' to @step."
        )
    name = qualname if module == "__main__" else f"{module}.{qualname}"
    return _NOT_A_NAME.sub("_", name)
