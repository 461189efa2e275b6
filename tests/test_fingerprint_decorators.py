"""Decorators count as calls: the decorator line is code, and a user decorator's body is followed.

A decorator wraps what the function does (``@retry``, ``@scale(2)``, ``@lru_cache``), so
what the decorator line says is part of the fingerprint, as a call would be, and a
decorator of the user's own code is fingerprinted like any callee. Renaming a decorator
therefore reads as a code change, exactly as renaming a called helper does.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _user_modules import import_user_module

from persistable._fingerprint import CodeFingerprint, fingerprint

_names = itertools.count()


def _fingerprint(folder: Path, source: str) -> CodeFingerprint:
    root: Callable[..., Any] = import_user_module(folder, source, "fp_decorators").root
    return fingerprint(root)


def _entries(found: CodeFingerprint) -> list[str]:
    return sorted(name.split(".", 1)[1] for name in found.functions)


WRAPPED_HELPER = """
    import functools


    def doubled(function):
        @functools.wraps(function)
        def inner(*args):
            return function(*args) * 2
        return inner


    @doubled
    def helper(x):
        return x + 1


    def root(x):
        return helper(x)
"""


def test_a_user_decorator_is_an_entry_and_its_body_counts(module_dir: Path) -> None:
    base = _fingerprint(module_dir, WRAPPED_HELPER)
    assert _entries(base) == ["doubled", "helper", "root"]
    changed = _fingerprint(module_dir, WRAPPED_HELPER.replace("* 2", "* 3"))
    assert changed.digest != base.digest
    assert _entries(changed) == _entries(base)


def test_renaming_a_decorator_counts_like_renaming_a_callee(module_dir: Path) -> None:
    base = _fingerprint(module_dir, WRAPPED_HELPER)
    renamed = _fingerprint(
        module_dir, WRAPPED_HELPER.replace("def doubled", "def twice").replace("@doubled", "@twice")
    )
    assert renamed.digest != base.digest
    assert _entries(renamed) == ["helper", "root", "twice"]
    callee_renamed = _fingerprint(
        module_dir, WRAPPED_HELPER.replace("def helper", "def step").replace("helper(x)", "step(x)")
    )
    assert callee_renamed.digest != base.digest


def test_comments_and_spacing_on_a_decorator_line_do_not_count(module_dir: Path) -> None:
    base = _fingerprint(module_dir, WRAPPED_HELPER)
    assert (
        _fingerprint(module_dir, WRAPPED_HELPER.replace("@doubled", "@ doubled  # twice")).digest
        == base.digest
    )


ON_ROOT = """
    import functools


    @functools.lru_cache(maxsize=4)
    def root(x):
        return x + 1
"""


def test_a_library_decorator_counts_by_what_its_line_says(module_dir: Path) -> None:
    base = _fingerprint(module_dir, ON_ROOT)
    assert _entries(base) == ["root"]  # functools itself is not walked
    assert _fingerprint(module_dir, ON_ROOT.replace("maxsize=4", "maxsize=8")).digest != base.digest
    assert _fingerprint(module_dir, ON_ROOT.replace("lru_cache(maxsize=4)", "cache")).digest != (
        base.digest
    )


UNWRAPPED = """
    def doubled(function):
        def inner(*args):
            return function(*args) * 2
        return inner


    @doubled
    def root(x):
        return x + 1
"""


def test_a_decorator_without_wraps_still_covers_the_function_it_wraps(module_dir: Path) -> None:
    """``root`` is then the decorator's inner function; the original is reached through its closure."""
    base = _fingerprint(module_dir, UNWRAPPED)
    assert "root" in _entries(base)
    assert _fingerprint(module_dir, UNWRAPPED.replace("x + 1", "x + 5")).digest != base.digest
    assert _fingerprint(module_dir, UNWRAPPED.replace("* 2", "* 4")).digest != base.digest
