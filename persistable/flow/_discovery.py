"""Find the class a config block names, without importing every file of a folder.

With ``path`` the class is imported from that module. Otherwise the built-in classes,
then ``./h5flow_modules/`` and the config's folder (recursively) are searched: each
``.py`` file is *parsed* (``ast``) for a top-level ``class <name>``, and only the file
that defines it is imported.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import logging
import sys
from pathlib import Path
from typing import Any

from persistable.flow._errors import FlowClassNotFoundError

__all__ = ["find_class", "search_dirs"]

logger = logging.getLogger(__name__)

_SKIP_DIRS = frozenset({"__pycache__", "node_modules", "site-packages", "build", "dist"})
#: Files parsed at most per search (a safety net against scanning a huge tree).
_MAX_FILES = 5000


def search_dirs(config_file: Path) -> list[Path]:
    """Folders searched for a class without ``path``: ./h5flow_modules/, then the config's folder."""
    dirs = [Path.cwd() / "h5flow_modules", config_file.resolve().parent]
    unique: list[Path] = []
    for d in dirs:
        if d not in unique:
            unique.append(d)
    return unique


def _defines(file: Path, classname: str) -> bool:
    try:
        tree = ast.parse(file.read_bytes(), filename=str(file))
    except (SyntaxError, ValueError, OSError):
        return False
    return any(isinstance(node, ast.ClassDef) and node.name == classname for node in tree.body)


def _python_files(folder: Path) -> list[Path]:
    files: list[Path] = []
    stack = [folder]
    while stack and len(files) < _MAX_FILES:
        current = stack.pop()
        try:
            entries = sorted(current.iterdir())
        except OSError:
            continue
        subdirs = []
        for entry in entries:
            if entry.is_dir():
                if not entry.name.startswith(".") and entry.name not in _SKIP_DIRS:
                    subdirs.append(entry)
            elif entry.suffix == ".py" and entry.name != "setup.py":
                files.append(entry)
        stack.extend(reversed(subdirs))
    return files


def _import_file(file: Path) -> Any:
    name = "persistable_flow_modules." + "_".join(file.resolve().with_suffix("").parts[1:])
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, file)
    if spec is None or spec.loader is None:  # pragma: no cover - a .py file always has one
        raise ImportError(f"cannot import {file}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[name]
        raise
    return module


def find_class(
    classname: str, path: str | None, dirs: list[Path], builtins: dict[str, type]
) -> type:
    """The class ``classname`` from module ``path``, the built-ins, or the first file of ``dirs`` defining it."""
    if path is not None:
        try:
            module = importlib.import_module(path)
        except ImportError as error:
            raise FlowClassNotFoundError(
                f"Class {classname!r}: module {path!r} could not be imported ({error}); "
                "fix 'path' or put the module on PYTHONPATH."
            ) from error
        found = getattr(module, classname, None)
        if not isinstance(found, type):
            raise FlowClassNotFoundError(
                f"Class {classname!r} is not defined in module {path!r}; fix 'classname' or 'path'."
            )
        return found
    if classname in builtins:
        return builtins[classname]
    for folder in dirs:
        if not folder.is_dir():
            continue
        for file in _python_files(folder):
            if _defines(file, classname):
                logger.info("Using %s from %s", classname, file)
                found = getattr(_import_file(file), classname)
                if isinstance(found, type):
                    return found
    where = ", ".join(str(d) for d in dirs)
    raise FlowClassNotFoundError(
        f"Class {classname!r} was not found in the built-in flow classes nor in any .py file "
        f"under {where}; add 'path: <module>' to its block or put the file in ./h5flow_modules/."
    )
