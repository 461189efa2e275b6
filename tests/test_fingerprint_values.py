"""Code reached through values, ``super()`` and params methods is part of the fingerprint.

Each case writes a module whose ``_generate_payload`` reaches a helper through a value
(not a plain name), generates with ``K = 2``, then imports the same module edited to
``K = 3`` under ``code_changes="rerun"``: the payload must follow the code. Before the
fingerprint described values, each of these silently loaded the ``K = 2`` payload.
"""

from __future__ import annotations

import importlib
import itertools
import os
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistable._fingerprint import fingerprint

HEADER = """
from dataclasses import dataclass
from typing import Any
import functools

from persistable import Persistable, PersistableParams

K = {k}

def times_k(x: int) -> int:
    return x * K

class Scale:
    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, x: int) -> int:
        return x * self.k

    def apply(self, x: int) -> int:
        return x * self.k

class Slotted:
    __slots__ = ("k",)

    def __init__(self, k: int) -> None:
        self.k = k

    def apply(self, x: int) -> int:
        return x * self.k

def scale_by(x: int, k: int) -> int:
    return x * k

{values}

@dataclass
class Params(PersistableParams):
    x: int = 1

class Step(Persistable[int, Params]):
    code_changes = "rerun"
{attributes}
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return {expression}
"""

CASES = {
    "dict of functions": ('OPS = {"times": times_k}', "", 'OPS["times"](self.params.x)'),
    "list of functions": ("FUNCS = [times_k]", "", "FUNCS[0](self.params.x)"),
    "tuple in a dict": ('OPS = {"t": (times_k, 1)}', "", 'OPS["t"][0](self.params.x)'),
    "class attribute dict": (
        "",
        '    OPS = {"times": times_k}\n',
        'self.OPS["times"](self.params.x)',
    ),
    "partial keyword": ("f = functools.partial(scale_by, k=K)", "", "f(self.params.x)"),
    "partial argument": ("f = functools.partial(scale_by, 1, K)", "", "f() * self.params.x"),
    "callable instance": ("M = Scale(K)", "", "M(self.params.x)"),
    "instance method call": ("M = Scale(K)", "", "M.apply(self.params.x)"),
    "slotted instance": ("M = Slotted(K)", "", "M.apply(self.params.x)"),
    "bound method": ("apply = Scale(K).apply", "", "apply(self.params.x)"),
    "instances in a list": ("MS = [Scale(K)]", "", "MS[0](self.params.x)"),
}

_versions = itertools.count(1)


def _import(tmp_path: Path, case: str, source: str) -> Any:
    """Import ``source`` as the case's module, as a new process would after an edit."""
    name = "fp_values_" + "".join(c if c.isalnum() else "_" for c in case)
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    stamp = 1_700_000_000 + next(_versions)  # each edit has its own mtime (linecache, pyc)
    os.utime(path, (stamp, stamp))
    sys.modules.pop(name, None)
    importlib.invalidate_caches()
    return importlib.import_module(name)


def _load(tmp_path: Path, case: str, k: int) -> Any:
    """The module of a value case, written with ``K = k``."""
    values, attributes, expression = CASES[case]
    source = HEADER.format(k=k, values=values, attributes=attributes, expression=expression)
    return _import(tmp_path, case, source)


@pytest.fixture
def modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(sys, "dont_write_bytecode", True)
    before = set(sys.modules)
    yield tmp_path
    for name in set(sys.modules) - before:
        if name.startswith("fp_values_"):
            del sys.modules[name]


@pytest.mark.parametrize("case", sorted(CASES))
def test_code_reached_through_a_value_is_fingerprinted(modules: Path, case: str) -> None:
    store = modules / "store"
    module = _load(modules, case, 2)
    first = module.Step(store, module.Params())
    first.load_generate()
    assert first.payload == 2
    module = _load(modules, case, 3)
    second = module.Step(store, module.Params())
    second.load_generate()
    assert second.payload == 3, f"{case}: the K = 2 payload was loaded for K = 3 code"
    # And the same code again finds its artifact (the description is deterministic).
    module = _load(modules, case, 3)
    again = module.Step(store, module.Params())
    assert again.key == second.key
    again.load()
    assert again.payload == 3


def test_plain_constants_keep_their_fingerprint(modules: Path) -> None:
    """Data the encoder knows is described exactly as before (golden fingerprints stay)."""
    from persistable._fingerprint_values import describe
    from persistable.params import encode_value

    for value in (3, [1, 2.5, "a"], {"a": (1, 2)}, None):
        described, code = describe("C", value, lambda obj: False)
        assert described == encode_value(value, "C")
        assert code == []


def test_library_objects_are_left_out(modules: Path) -> None:
    import logging
    import threading

    from persistable._fingerprint_values import describe

    assert describe("log", logging.getLogger("x"), lambda obj: False) == (None, [])
    assert describe("lock", threading.Lock(), lambda obj: False) == (None, [])


def test_a_value_that_contains_itself_is_described(modules: Path) -> None:
    module = _load(modules, "dict of functions", 2)
    module.OPS["self"] = module.OPS  # a cycle: described with a marker, no recursion error
    before = fingerprint(module.Step._generate_payload)
    assert "times_k" in " ".join(before.functions)


SUPER_AND_PARAMS = {
    "super() call": """
from dataclasses import dataclass
from typing import Any

from persistable import Persistable, PersistableParams

K = {k}

@dataclass
class Params(PersistableParams):
    x: int = 1

class Base(Persistable[int, Params]):
    code_changes = "rerun"

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.x * K

class Step(Base):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return super()._generate_payload(**untracked_payload_params)
""",
    "params method": """
from dataclasses import dataclass
from typing import Any

from persistable import Persistable, PersistableParams

K = {k}

@dataclass
class Params(PersistableParams):
    x: int = 1

    def scaled(self) -> int:
        return self.x * K

class Step(Persistable[int, Params]):
    code_changes = "rerun"

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.scaled()
""",
}


def _load_source(tmp_path: Path, case: str, k: int) -> Any:
    return _import(tmp_path, case, SUPER_AND_PARAMS[case].replace("{k}", str(k)))


@pytest.mark.parametrize("case", sorted(SUPER_AND_PARAMS))
def test_super_calls_and_params_methods_are_fingerprinted(modules: Path, case: str) -> None:
    store = modules / "store"
    payloads = []
    for k in (2, 3, 3):
        module = _load_source(modules, case, k)
        made = module.Step(store, module.Params())
        made.load_generate()
        payloads.append(made.payload)
    assert payloads == [2, 3, 3], f"{case}: the payload did not follow the code"


def test_generated_dataclass_methods_are_not_unreadable_code(modules: Path) -> None:
    """A params class's methods are walked, but not the ones dataclass writes (no source)."""
    import warnings

    from persistable.exceptions import UnreadableCodeWarning

    module = _load_source(modules, "params method", 2)
    made = module.Step(modules / "store", module.Params())
    with warnings.catch_warnings():
        warnings.simplefilter("error", UnreadableCodeWarning)
        functions = made.code_fingerprint().functions
    assert any(name.endswith("Params.scaled") for name in functions)
    assert not any("__init__" in name or "__repr__" in name for name in functions)
