"""The order of the tracked dependencies is part of the key when it carries information.

User code reads dependencies by position (``a, b = self.tracked_persistable_dependencies``,
the 1.x way). Before, ``[a, b]`` and ``[b, a]`` had one key, so the second order silently
loaded the first one's payload. Payload-name order adds nothing, so keys of dependencies
given in that order (and every golden key) stay what they were.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistable import Persistable, PersistableParams


@dataclass
class Value(PersistableParams):
    v: int = 0


class Leaf(Persistable[int, Value]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return self.params.v


class Difference(Persistable[int, Value]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        first, second = self.tracked_persistable_dependencies
        difference: int = first.payload - second.payload
        return difference


def _leaves(store: Path) -> tuple[Leaf, Leaf]:
    return Leaf(store, Value(5), payload_name="a"), Leaf(store, Value(2), payload_name="b")


def test_swapped_dependencies_are_another_input(tmp_path: Path) -> None:
    a, b = _leaves(tmp_path)
    forward = Difference(tmp_path, Value(), [a, b])
    forward.load_generate()
    backward = Difference(tmp_path, Value(), [b, a])
    backward.load_generate()
    assert (forward.payload, backward.payload) == (3, -3)
    assert forward.key != backward.key


def test_payload_name_order_keeps_the_order_free_key(tmp_path: Path) -> None:
    a, b = _leaves(tmp_path)
    made = Difference(tmp_path, Value(), [a, b])
    assert "dependency_order" not in made.key_tree()
    swapped = Difference(tmp_path, Value(), [b, a])
    assert swapped.key_tree()["dependency_order"] == ["b", "a"]


def test_mapping_roles_in_another_order_are_another_input(tmp_path: Path) -> None:
    a, b = _leaves(tmp_path)
    forward = Difference(tmp_path, Value(), {"x": a, "y": b})
    backward = Difference(tmp_path, Value(), {"y": b, "x": a})
    forward.load_generate()
    backward.load_generate()
    assert (forward.payload, backward.payload) == (3, -3)


def test_a_dependency_appended_later_counts_in_its_place(tmp_path: Path) -> None:
    a, b = _leaves(tmp_path)
    made = Difference(tmp_path, Value(), [b])
    made.tracked_persistable_dependencies.insert(0, a)
    made.load_generate()
    assert made.payload == 3
    other = Difference(tmp_path, Value(), [b, a])
    assert made.key != other.key


def test_explain_names_the_order(tmp_path: Path) -> None:
    a, b = _leaves(tmp_path)
    Difference(tmp_path, Value(), [a, b]).load_generate()
    explanation = Difference(tmp_path, Value(), [b, a]).explain()
    assert [item.where for item in explanation.differences] == ["dependency order"]
    assert "dependency order a, b -> b, a" in str(explanation)
