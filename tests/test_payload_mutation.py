"""A payload in memory follows its key also when a params value changes in place (no assignment)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from persistable import MemoryStore, Persistable, PersistableParams
from persistable._mutability import key_changes_only_by_assignment


@dataclass
class Items(PersistableParams):
    items: list[int] = field(default_factory=list)


class Total(Persistable[int, Items]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return sum(self.params.items)


@dataclass
class Scalars(PersistableParams):
    n: int = 1
    names: tuple[str, ...] = ("a",)


class Echo(Persistable[int, Scalars]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.n


@dataclass
class Weights(PersistableParams):
    weights: NDArray[np.float64] = field(default_factory=lambda: np.zeros(3))


class Scaled(Persistable[float, Weights]):
    def _generate_payload(self, **untracked_payload_params: Any) -> float:
        return float(self.params.weights.sum())


class Downstream(Persistable[int, Scalars]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        (upstream,) = self.tracked_persistable_dependencies
        return int(upstream.payload) * 10


def test_appending_to_a_list_param_gives_the_new_keys_payload(memory_store: MemoryStore) -> None:
    """After params.items.append(), payload and key both belong to the new list: never the old sum."""
    node = Total(memory_store, Items([1, 2]), None)
    node.load_generate()
    old_key = node.key
    assert node.payload == 3
    node.params.items.append(10)
    assert node.key != old_key
    assert node.payload == 13
    node.params.items.pop()
    assert node.payload == 3
    assert node.key == old_key


def test_an_array_param_changed_in_place_gives_the_new_keys_payload(
    memory_store: MemoryStore,
) -> None:
    """Writing into a numpy array param makes the payload in memory stale: it is made for the new key."""
    node = Scaled(memory_store, Weights(np.ones(3)), None)
    assert node.payload == 3.0
    node.params.weights[0] = 5.0
    assert node.payload == 7.0


def test_an_upstream_list_changed_in_place_reaches_the_downstream_payload(
    memory_store: MemoryStore,
) -> None:
    """The downstream payload in memory is remade when an upstream's list param changes in place."""
    up = Total(memory_store, Items([1]), None, payload_name="up")
    down = Downstream(memory_store, Scalars(), [up], payload_name="down")
    assert down.payload == 10
    up.params.items.append(1)
    assert down.payload == 20


def test_immutable_params_keep_the_no_rehash_shortcut(memory_store: MemoryStore) -> None:
    """Params of ints and tuples of str cannot change in place; lists, arrays and plain dataclasses can."""
    assert key_changes_only_by_assignment(Echo(memory_store, Scalars(), None))
    assert not key_changes_only_by_assignment(Total(memory_store, Items([1]), None))
    assert not key_changes_only_by_assignment(Scaled(memory_store, Weights(), None))
    up = Total(memory_store, Items([1]), None, payload_name="up")
    down = Downstream(memory_store, Scalars(), [up], payload_name="down")
    assert not key_changes_only_by_assignment(down)
    frozen_up = Echo(memory_store, Scalars(), None, payload_name="frozen_up")
    assert key_changes_only_by_assignment(Downstream(memory_store, Scalars(), [frozen_up]))
