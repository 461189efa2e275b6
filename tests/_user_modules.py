"""Temporary user modules for fingerprint tests (the folder is conftest's ``module_dir``)."""

from __future__ import annotations

import importlib
import itertools
import textwrap
from pathlib import Path
from types import ModuleType

_names = itertools.count()


def import_user_module(folder: Path, source: str, prefix: str = "fp_user") -> ModuleType:
    """Import ``source`` as a fresh module of a unique name (a user module, not a library)."""
    name = f"{prefix}_{next(_names)}"
    (folder / f"{name}.py").write_text(textwrap.dedent(source))
    importlib.invalidate_caches()
    return importlib.import_module(name)
