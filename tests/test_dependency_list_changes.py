"""User code that appends to another node's dependency list in place, during an operation.

The keys resolved before user code runs are reused while no params field is assigned;
an in-place append is no assignment. Nothing wrong may be stored for it: the node whose
list changed is checked against its key when its payload is committed, and refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

import persistable
from persistable import Persistable, PersistableParams
from persistable.exceptions import KeyMismatchError
from persistable.store import Store


@dataclass
class OneInt(PersistableParams):
    i: int


class Adder(Persistable[int, OneInt]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.i + sum(int(d.payload) for d in self.tracked_persistable_dependencies)


class Grafter(Adder):
    """Runs ``hook`` (which changes another node) before adding up its own inputs."""

    hook: ClassVar[Callable[[], None]] = staticmethod(lambda: None)

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        type(self).hook()
        return super()._generate_payload()


def _graph(store: Store) -> tuple[Adder, Adder, Adder]:
    extra = Adder(store, OneInt(100), None, payload_name="extra")
    left = Grafter(store, OneInt(1), None, payload_name="left")
    right = Adder(store, OneInt(2), None, payload_name="right")
    top = Adder(store, OneInt(3), [left, right], payload_name="top")
    Grafter.hook = staticmethod(lambda: right.tracked_persistable_dependencies.append(extra))
    return right, top, extra


def _nothing_wrong_stored(store: Store) -> None:
    """The key of ``right`` without dependencies never holds a payload made with ``extra``."""
    plain = Adder(store, OneInt(2), None, payload_name="right")
    if plain.exists():
        plain.load()
        assert plain.payload == 2


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_an_append_to_another_nodes_dependencies_during_a_run_stores_nothing_wrong(
    local_store: Store, executor: str
) -> None:
    right, top, extra = _graph(local_store)
    report = persistable.run(top, executor=executor, max_workers=1, progress=False)
    by_name = {result.payload_name: result for result in report}
    assert by_name["right"].status == "failed", report
    assert "KeyMismatchError" in (by_name["right"].error or "")
    assert by_name["top"].status == "skipped"
    _nothing_wrong_stored(local_store)
    # Run again with the graph as it is now: right is generated under its new key.
    Grafter.hook = staticmethod(lambda: None)
    persistable.run(top, progress=False)
    assert right.payload == 102
    assert right.key == Adder(local_store, OneInt(2), [extra], payload_name="right").key


def test_an_append_to_another_nodes_dependencies_during_load_generate_stores_nothing_wrong(
    local_store: Store,
) -> None:
    _, top, _ = _graph(local_store)
    with pytest.raises(KeyMismatchError, match="changed"):
        top.load_generate()
    _nothing_wrong_stored(local_store)
