"""Identity: undecorated params, added_later fields, foreign classes, payloads that follow their key, deep chains."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from typing import Any, ClassVar

import pytest

from persistable import MemoryStore, Persistable, PersistableParams, added_later
from persistable.exceptions import (
    DependencyError,
    ForeignArtifactWarning,
    InvalidParamsError,
    NoPayloadError,
)
from persistable.store import Store


@dataclass
class BaseParams(PersistableParams):
    n: int = 1


class Child(BaseParams):
    m: int = 5


@dataclass
class OneInt(PersistableParams):
    i: int


class Node(Persistable[int, OneInt]):
    calls: ClassVar[int] = 0

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        type(self).calls += 1
        upstream: int = sum(
            dependency.payload for dependency in self.tracked_persistable_dependencies
        )
        return self.params.i + upstream


def test_undecorated_params_subclass_is_refused(memory_store: MemoryStore) -> None:
    """A params subclass that declares fields without @dataclass is refused, naming the class and the fix."""
    with pytest.raises(InvalidParamsError, match=r"Child declares the fields m .*@dataclass"):
        Node(memory_store, Child(), None)  # type: ignore[arg-type]
    with pytest.raises(InvalidParamsError, match="Child declares the fields m"):
        Child().to_dict()


def test_subclass_with_only_class_vars_needs_no_decorator() -> None:
    """A subclass that adds only ClassVar annotations (no fields) is accepted as it is."""

    class Tagged(BaseParams):
        label: ClassVar[str] = "x"

    assert Tagged(n=2).to_dict() == {"n": 2}


@dataclass
class Before(PersistableParams):
    alpha: float = 0.1


@dataclass
class After(PersistableParams):
    alpha: float = 0.1
    scale: float = added_later(default=1.0)
    tags: list[str] = added_later(default_factory=list)  # noqa: RUF009 - a field specifier


class Fit(Persistable[float, Any]):
    def _generate_payload(self, **untracked_payload_params: Any) -> float:
        return float(self.params.alpha)


def test_added_later_field_at_its_default_keeps_the_old_key(memory_store: MemoryStore) -> None:
    """An added_later field at its default leaves the key and params.json as before the field existed."""
    old = Fit(memory_store, Before(), None, payload_name="fit")
    new = Fit(memory_store, After(), None, payload_name="fit")
    assert new.persist_hash == old.persist_hash
    assert new.params.to_dict() == {"alpha": 0.1}
    old.generate()
    new.load()  # the artifact made before the field existed is found


def test_added_later_field_off_its_default_enters_the_key(memory_store: MemoryStore) -> None:
    """Any other value of an added_later field enters the key, and 1 differs from 1.0."""
    base = Fit(memory_store, After(), None, payload_name="fit").persist_hash
    scaled = Fit(memory_store, After(scale=2.0), None, payload_name="fit")
    assert scaled.persist_hash != base
    assert scaled.params.to_dict() == {"alpha": 0.1, "scale": 2.0}
    assert Fit(memory_store, After(scale=1), None, payload_name="fit").persist_hash != base
    assert Fit(memory_store, After(tags=["a"]), None, payload_name="fit").persist_hash != base


def test_added_later_without_default_is_refused() -> None:
    """added_later() without a default raises InvalidParamsError saying a default is needed."""
    with pytest.raises(InvalidParamsError, match="needs a default"):
        added_later()


def _features(store: Store, module: str) -> Persistable[Any, Any]:
    namespace: dict[str, Any] = {"__name__": module}
    exec(
        "from typing import Any\n"
        "from persistable import Persistable\n"
        "class Features(Persistable[Any, Any]):\n"
        f"    def _generate_payload(self, **kw: Any) -> Any:\n        return {module!r}\n",
        namespace,
    )
    cls: type[Persistable[Any, Any]] = namespace["Features"]
    return cls(store, BaseParams(), None)


def test_artifact_of_another_class_warns_naming_both(local_or_memory_store: Store) -> None:
    """Loading what another class wrote under the same payload name warns, naming both classes and payload_name=."""
    first = _features(local_or_memory_store, "lab.one")
    first.load_generate()
    metadata = first.metadata
    assert metadata["code"]["class"] == "lab.one.Features"
    second = _features(local_or_memory_store, "lab.two")
    assert second.persist_hash == first.persist_hash
    with pytest.warns(
        ForeignArtifactWarning, match=r"lab\.one\.Features.*lab\.two\.Features.*payload_name="
    ):
        second.load_generate()


def test_payload_follows_the_key(memory_store: MemoryStore) -> None:
    """After a params field is assigned, payload is the payload of the new key, never the old one."""
    node = Node(memory_store, OneInt(20), None)
    node.load_generate()
    assert node.payload == 20
    node.params.i = 30
    assert node.payload == 30
    node.params = OneInt(40)
    assert node.payload == 40
    node.params = OneInt(20)
    assert node.payload == 20


def test_downstream_payload_follows_an_upstream_change(memory_store: MemoryStore) -> None:
    """Changing an upstream's params makes the downstream payload in memory stale: it is reloaded for the new key."""
    up = Node(memory_store, OneInt(1), None, payload_name="up")
    down = Node(memory_store, OneInt(10), [up], payload_name="down")
    assert down.payload == 11
    up.params.i = 2
    assert down.payload == 12


def test_persist_refuses_a_payload_of_an_older_key(memory_store: MemoryStore) -> None:
    """persist() after params changed refuses to file the old payload under the new key."""
    node = Node(memory_store, OneInt(1), None)
    node.generate(persist=False)
    node.params.i = 2
    with pytest.raises(NoPayloadError, match="call generate"):
        node.persist()
    assert not node.exists()


def _chain(store: Store, depth: int) -> Node:
    node: Node | None = None
    for index in range(depth):
        node = Node(store, OneInt(index % 3), [node] if node is not None else None)
    assert node is not None
    return node


def test_ten_thousand_deep_chain_has_a_key_with_the_default_recursion_limit(
    memory_store: MemoryStore,
) -> None:
    """A 10,000-deep linear chain computes its key and params tree without raising the recursion limit."""
    assert sys.getrecursionlimit() <= 10_000
    top = _chain(memory_store, 10_000)
    key = top.persist_hash
    assert key.startswith("k1-")
    assert key == top.persist_hash
    tree = top.params_tree
    depth = 0
    while "node" in tree:
        tree = tree["node"]
        depth += 1
    assert depth == 9_999


def test_a_real_cycle_is_reported_as_a_dependency_cycle(memory_store: MemoryStore) -> None:
    """A dependency loop raises DependencyError naming the cycle, not a params error."""
    first = Node(memory_store, OneInt(1), None, payload_name="first")
    second = Node(memory_store, OneInt(2), [first], payload_name="second")
    first.tracked_persistable_dependencies.append(second)
    with pytest.raises(DependencyError, match="cycle"):
        _ = second.persist_hash


def test_params_json_holds_lineage_not_the_upstream_tree(memory_store: MemoryStore) -> None:
    """params.json holds own params plus each dependency's payload name and key, whatever the depth."""
    up = Node(memory_store, OneInt(1), None, payload_name="up")
    down = Node(memory_store, OneInt(2), {"source": up}, payload_name="down")
    down.load_generate()
    raw = memory_store.read_bytes(f"{down.artifact_dir}/params.json")
    assert json.loads(raw) == {
        "i": 2,
        "source": {"payload_name": "up", "key": up.persist_hash},
    }


def test_two_thousand_deep_chain_load_generates_with_the_default_recursion_limit(
    local_store: Store,
) -> None:
    """load_generate() on a 2,000-deep chain generates upstream first, in order, then reloads it all at once."""
    assert sys.getrecursionlimit() <= 10_000
    top = _chain(local_store, 2_000)
    top.load_generate()
    assert top.payload == sum(index % 3 for index in range(2_000))
    again = _chain(local_store, 2_000)
    again.load_generate()
    assert again.payload == top.payload
    # params.json does not grow with depth: it names the upstream by key.
    size = len(local_store.read_bytes(f"{top.artifact_dir}/params.json"))
    assert size < 300


class Recording(Node):
    """A node whose upstream payloads must already exist when its code runs."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        for dependency in self.tracked_persistable_dependencies:
            assert dependency.exists(), "upstream code ran before its dependency was committed"
        return super()._generate_payload(**untracked_payload_params)


def test_missing_upstream_is_generated_first_and_released(memory_store: MemoryStore) -> None:
    """Missing upstream artifacts are committed before the node's own code reads them; their payloads are then freed."""
    first = Recording(memory_store, OneInt(1), None, payload_name="first")
    second = Recording(memory_store, OneInt(2), [first], payload_name="second")
    third = Recording(memory_store, OneInt(3), [second], payload_name="third")
    third.load_generate()
    assert third.payload == 6
    assert first.exists()
    assert second.exists()
    assert not first._has_payload
