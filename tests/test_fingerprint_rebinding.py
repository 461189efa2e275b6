"""A cached code fingerprint notices what a notebook does: rebinding a constant, redefining a helper."""

from __future__ import annotations

import importlib
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from persistable._fingerprint import fingerprint, persistable_fingerprint

SOURCE = """
from dataclasses import dataclass
from typing import Any

from persistable import Persistable, PersistableParams, step

SCALE = 2
OFFSETS = [0]


def helper(x: int) -> int:
    return x * SCALE + OFFSETS[0]


@step(data_dir=DATA_DIR)
def scaled(x: int) -> int:
    return helper(x)


@dataclass
class Params(PersistableParams):
    x: int = 1


class Scaled(Persistable[int, Params]):
    code_changes = "rerun"

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return helper(self.params.x)


def make_processor() -> Any:
    from persistable.samples import Processor

    class Rescale(Processor):
        def process(self, sample: Any) -> Any:
            sample.value = helper(sample.value)
            return sample

    return Rescale
"""


@pytest.fixture
def notebook(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A user module on disk (readable source), imported like a notebook's code."""
    package = tmp_path / "code"
    package.mkdir()
    (package / "nbmod.py").write_text(
        textwrap.dedent(SOURCE).replace("DATA_DIR", repr(str(tmp_path / "data")))
    )
    monkeypatch.syspath_prepend(str(package))
    module = importlib.import_module("nbmod")
    yield module
    sys.modules.pop("nbmod", None)


def test_rebinding_a_constant_reruns_a_step(notebook: Any) -> None:
    """SCALE = 3 after a first call: the next call computes with 3, not the old artifact's 2."""
    assert notebook.scaled(5) == 10
    notebook.SCALE = 3
    assert notebook.scaled(5) == 15
    notebook.SCALE = 2
    assert notebook.scaled(5) == 10


def test_redefining_a_helper_reruns_a_persistable(notebook: Any, tmp_path: Path) -> None:
    """A helper redefined (a notebook cell run again with other code) changes the class's fingerprint and key."""
    first = notebook.Scaled(tmp_path / "data", notebook.Params(5), None)
    first.load_generate()
    assert first.payload == 10
    first_key = first.key
    before = persistable_fingerprint(notebook.Scaled).digest
    namespace: dict[str, object] = {}
    exec("def helper(x):\n    return x * 7\n", namespace)
    notebook.helper = namespace["helper"]
    assert persistable_fingerprint(notebook.Scaled).digest != before
    second = notebook.Scaled(tmp_path / "data", notebook.Params(5), None)
    assert second.key != first_key
    second.load_generate()
    assert second.payload == 35


def test_an_unchanged_module_keeps_its_fingerprint(notebook: Any) -> None:
    """Nothing rebound: the same fingerprint object comes back from the cache (no new walk)."""
    assert fingerprint(notebook.scaled.function) is fingerprint(notebook.scaled.function)


def test_a_payload_in_memory_follows_a_code_change(notebook: Any, tmp_path: Path) -> None:
    """With code_changes="rerun", the payload held in memory is remade when the code it ran is redefined."""
    node = notebook.Scaled(tmp_path / "data", notebook.Params(5), None)
    assert node.payload == 10
    notebook.SCALE = 4
    assert node.payload == 20


def test_a_processor_fingerprint_follows_a_rebound_constant(notebook: Any) -> None:
    """A samples Processor's cache key changes when a constant its process() reaches is rebound."""
    from persistable.samples._processor import code_fingerprint

    rescale = notebook.make_processor()
    before = code_fingerprint(rescale)
    assert code_fingerprint(rescale) == before
    notebook.SCALE = 5
    assert code_fingerprint(rescale) != before


MIXIN_SOURCE = """
from dataclasses import dataclass
from typing import Any

from persistable import Persistable, PersistableParams


@dataclass
class Params(PersistableParams):
    x: int = 1


class First:
    def helper(self) -> int:
        return 1


class Second:
    def helper(self) -> int:
        return 2


def third(self: Any) -> int:
    return 3


class Mixin(First):
    pass


class Uses(Persistable[int, Params], Mixin):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.helper()
"""


@pytest.fixture
def mixins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """A user module whose persistable reads ``self.helper`` from a base class."""
    package = tmp_path / "mixcode"
    package.mkdir()
    (package / "mixmod.py").write_text(textwrap.dedent(MIXIN_SOURCE))
    monkeypatch.syspath_prepend(str(package))
    module = importlib.import_module("mixmod")
    yield module
    sys.modules.pop("mixmod", None)


def test_a_self_lookup_follows_a_base_class_rebinding_and_a_new_mro(mixins: Any) -> None:
    """``self.helper`` found in a base class: rebinding it there, or changing the bases, changes the fingerprint."""
    before = persistable_fingerprint(mixins.Uses, mixins.Params)
    assert persistable_fingerprint(mixins.Uses, mixins.Params).digest == before.digest
    mixins.Mixin.__bases__ = (mixins.Second,)  # the MRO of Uses changes: Second.helper now
    moved = persistable_fingerprint(mixins.Uses, mixins.Params)
    assert moved.digest != before.digest
    mixins.Second.helper = mixins.third  # rebound in the base class's own dict
    rebound = persistable_fingerprint(mixins.Uses, mixins.Params)
    assert rebound.digest not in (before.digest, moved.digest)
    mixins.Mixin.__bases__ = (mixins.First,)
    assert persistable_fingerprint(mixins.Uses, mixins.Params).digest == before.digest
