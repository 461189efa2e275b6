"""Keys are hashed once per object per operation: load_generate() and persistable.run stay linear in depth."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pytest

import persistable
import persistable._keys as keys_module
import persistable._mutability as mutability
import persistable._v1._adopt as v1_adopt
from persistable import Persistable, PersistableParams
from persistable.store import Store

DEPTH = 300


@dataclass
class OneInt(PersistableParams):
    i: int


class Node(Persistable[int, OneInt]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        upstream = self.tracked_persistable_dependencies
        return self.params.i + (int(upstream[0].payload) if upstream else 0)


def _chain(store: Store, depth: int) -> list[Node]:
    nodes: list[Node] = []
    for index in range(depth):
        nodes.append(Node(store, OneInt(index % 5), nodes[-1:] or None))
    return nodes


def _count(monkeypatch: pytest.MonkeyPatch, module: Any, name: str) -> list[int]:
    calls = [0]
    original: Callable[..., Any] = getattr(module, name)

    def counted(*args: Any, **kwargs: Any) -> Any:
        calls[0] += 1
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, counted)
    return calls


def test_load_generate_of_a_deep_chain_hashes_each_key_a_few_times(
    local_store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 300-deep chain load_generate()s with O(depth) key hashes, not O(depth²) (the 1.x md5 included)."""
    nodes = _chain(local_store, DEPTH)
    hashes = _count(monkeypatch, keys_module, "key_from_tree")
    v1_md5s = _count(monkeypatch, v1_adopt, "v1_md5")
    checks = _count(monkeypatch, mutability, "_mutable")
    nodes[-1].load_generate()
    assert hashes[0] <= 2 * DEPTH, hashes[0]  # quadratic was ~DEPTH²/2 = 45,000
    # Whether params can change in place is asked of every node: once per node, not per walk.
    assert checks[0] <= 2 * DEPTH, checks[0]
    assert nodes[-1].payload == sum(index % 5 for index in range(DEPTH))
    assert nodes[0].exists()
    # No 1.x file in the store: no 1.x md5 (which nests every upstream params tree).
    assert v1_md5s[0] == 0


@pytest.mark.parametrize("executor", ["serial", "threads"])
def test_run_of_a_deep_chain_hashes_each_key_a_few_times(
    local_store: Store, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    """persistable.run of a 300-deep chain reuses the keys it resolved, in user code too."""
    nodes = _chain(local_store, DEPTH)
    hashes = _count(monkeypatch, keys_module, "key_from_tree")
    report = persistable.run(nodes[-1], executor=executor, max_workers=2, progress=False)
    assert len(report.generated) == DEPTH, report
    assert hashes[0] <= 2 * DEPTH, hashes[0]
    again = _chain(local_store, DEPTH)[-1]
    again.load()
    assert again.payload == sum(index % 5 for index in range(DEPTH))


class Meddler(Node):
    """Assigns a field of its upstream's params, then reads the upstream payload."""

    seen: ClassVar[list[int]] = []

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        upstream = self.tracked_persistable_dependencies[0]
        upstream.params.i = 40
        value = int(upstream.payload)
        type(self).seen.append(value)
        return value


def test_a_params_assignment_during_a_run_makes_keys_hashed_anew(local_store: Store) -> None:
    """Resolved keys are trusted only until a params field is assigned: then the new key's payload is used."""
    first = Node(local_store, OneInt(1), None, payload_name="first")
    second = Meddler(local_store, OneInt(2), [first], payload_name="second")
    report = persistable.run(second, progress=False)
    assert [result.status for result in report] == ["generated", "generated"], report
    assert Meddler.seen == [40]  # the payload of first's new key (i=40), not of i=1
    assert first.key == Node(local_store, OneInt(40), None, payload_name="first").key
    assert first.exists()
    # The old key was committed by the run before the assignment.
    assert Node(local_store, OneInt(1), None, payload_name="first").exists()


@dataclass
class Items(PersistableParams):
    items: list[int] = field(default_factory=list)


class Summed(Persistable[int, Items]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return sum(self.params.items)


class Appender(Node):
    """Appends to its upstream's list param in place (no assignment), then reads its payload."""

    seen: ClassVar[list[int]] = []

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        upstream = self.tracked_persistable_dependencies[0]
        upstream.params.items.append(40)
        value = int(upstream.payload)
        type(self).seen.append(value)
        return value


def test_an_in_place_change_during_a_run_is_not_hidden_by_resolved_keys(local_store: Store) -> None:
    """Keys of params that can change without an assignment are never reused: the new key's payload is used."""
    first = Summed(local_store, Items([1]), None, payload_name="first")
    second = Appender(local_store, OneInt(2), [first], payload_name="second")
    persistable.run(second, progress=False)
    assert Appender.seen == [41]
    assert first.key == Summed(local_store, Items([1, 40]), None, payload_name="first").key
