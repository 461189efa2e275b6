"""The persistable classes a 1.x cache may hold, found in the user's modules (for ``migrate-v1``)."""

from __future__ import annotations

import importlib
import importlib.util
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from persistable._persistable import Persistable, _camel_to_snake

__all__ = ["classes_in_modules"]


def _import(spec: str) -> Any:
    if spec.endswith(".py"):
        path = Path(spec).resolve()
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise ImportError(f"cannot import {spec!r}: not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module  # dataclasses and pickle look classes up there
        module_spec.loader.exec_module(module)
        return module
    if "" not in sys.path:
        sys.path.insert(0, "")  # as `python -m` does: modules of the current folder
    return importlib.import_module(spec)


def classes_in_modules(specs: Iterable[str]) -> dict[str, type[Persistable[Any, Any]]]:
    """Persistable subclasses defined in the modules ``specs`` (dotted names or ``.py`` files), by default payload name."""
    classes: dict[str, type[Persistable[Any, Any]]] = {}
    for spec in specs:
        module = _import(spec)
        for value in vars(module).values():
            if (
                isinstance(value, type)
                and issubclass(value, Persistable)
                and value is not Persistable
                and value.__module__ == module.__name__
            ):
                classes[_camel_to_snake(value.__name__)] = value
    return classes
