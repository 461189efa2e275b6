"""Fingerprint edges: unreadable source warns, library data (sys.argv) is not a user constant."""

from __future__ import annotations

import sys
import textwrap
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from _user_modules import import_user_module

from persistable import MemoryStore
from persistable._fingerprint import fingerprint
from persistable.exceptions import UnreadableCodeWarning

_counter = iter(range(1_000_000))


def _module(folder: Path, source: str) -> ModuleType:
    return import_user_module(folder, source, "fp_edge")


def test_library_module_data_is_not_a_user_constant(
    module_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Reading sys.argv or os.sep leaves them out of the fingerprint: another argv is no code change."""
    source = """
        import os
        import sys

        LIMIT = 4


        def root(x):
            return [x, sys.argv[1:], os.sep, LIMIT]
        """
    module = _module(module_dir, source)
    entries = fingerprint(module.root).functions
    assert [name.rpartition(".")[2] for name in entries] == ["root", "LIMIT"]
    monkeypatch.setattr(sys, "argv", ["other", "--flag"])
    # The same code, imported anew (fingerprints are cached per function object).
    assert fingerprint(_module(module_dir, source).root).digest == fingerprint(module.root).digest


def test_a_user_module_attribute_still_counts(module_dir: Path) -> None:
    """A constant read as an attribute of the user's own module (config.SCALE) stays in the fingerprint."""
    config = _module(module_dir, "SCALE = 3\n")
    user = _module(
        module_dir,
        f"""
        import {config.__name__} as config


        def root(x):
            return x * config.SCALE
        """,
    )
    assert f"{user.__name__}.config.SCALE" in fingerprint(user.root).functions


def _exec_class(code_changes: str) -> type[Any]:
    """A Persistable subclass made by exec(): its source cannot be read."""
    namespace: dict[str, Any] = {}
    source = textwrap.dedent(
        f"""
        from typing import Any
        from persistable import Persistable


        class Made(Persistable[int, Any]):
            code_changes = {code_changes!r}

            def _generate_payload(self, **untracked: Any) -> int:
                return 7
        """
    )
    exec(compile(source, "<generated>", "exec"), namespace)
    made: type[Any] = namespace["Made"]
    return made


@pytest.mark.parametrize("mode", ["warn", "rerun"])
def test_unreadable_source_warns_once_naming_it(mode: str) -> None:
    """Code without readable source warns clearly (once per class) instead of being keyed 'unavailable' silently."""
    from dataclasses import dataclass

    from persistable import PersistableParams

    @dataclass
    class Empty(PersistableParams):
        n: int = 0

    made = _exec_class(mode)
    with pytest.warns(
        UnreadableCodeWarning, match=r"Made\._generate_payload cannot be read.*version="
    ):
        made(MemoryStore("fp-edges"), Empty()).load_generate()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadableCodeWarning)
        made(MemoryStore("fp-edges"), Empty(1)).load_generate()  # no second warning
    MemoryStore.clear("fp-edges")


def test_ignore_does_not_warn() -> None:
    """With code_changes='ignore' an unreadable source is not worth a warning."""
    from dataclasses import dataclass

    from persistable import PersistableParams

    @dataclass
    class Empty(PersistableParams):
        n: int = 0

    made = _exec_class("ignore")
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadableCodeWarning)
        made(MemoryStore("fp-edges"), Empty()).code_fingerprint()
