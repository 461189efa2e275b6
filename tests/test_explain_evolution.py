"""explain() on params classes that evolved (a field removed, a type changed) and on another key scheme."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistable import JsonFileIO, LocalStore, Persistable, PersistableParams


@dataclass
class Before(PersistableParams):
    rate: int = 1
    window: int = 5


@dataclass
class After(PersistableParams):
    rate: float = 1.0


class Smooth(Persistable[float, Any]):
    def _generate_payload(self, **untracked_payload_params: Any) -> float:
        return float(self.params.rate)


def test_a_removed_field_and_a_changed_type_are_shown(tmp_path: Path) -> None:
    """Removing a field or changing its type changes the key; explain() says which field and how."""
    store = LocalStore(tmp_path / "store")
    old = Smooth(store, Before(), payload_name="smooth", payload_io=JsonFileIO())
    old.load_generate()
    new = Smooth(store, After(), payload_name="smooth", payload_io=JsonFileIO())
    assert new.key != old.key
    explanation = new.explain()
    assert explanation.nearest == old.key
    text = str(explanation)
    assert "params.rate: 1 -> 1.0" in text, text
    assert "params.window: 5 -> <absent>" in text, text


def test_another_key_scheme_is_shown(tmp_path: Path) -> None:
    """An artifact recorded under another key scheme is reported as a scheme difference."""
    store = LocalStore(tmp_path / "store")
    old = Smooth(store, Before(rate=2), payload_name="smooth", payload_io=JsonFileIO())
    old.load_generate()
    metadata_path = Path(str(old.artifact_path)) / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["key_scheme"] = 0
    metadata_path.write_text(json.dumps(metadata))
    explanation = Smooth(store, Before(rate=3), payload_name="smooth").explain()
    text = str(explanation)
    assert "params.rate: 2 -> 3" in text, text
    assert "key scheme 0 -> 1" in text, text


class Stage(Persistable[float, Any]):
    def _generate_payload(self, **untracked_payload_params: Any) -> float:
        return float(self.params.rate)


def test_an_added_or_removed_dependency_is_an_upstream_difference(tmp_path: Path) -> None:
    """A dependency the artifact had and the persistable has not (or the reverse) is shown as upstream, not as a params field."""
    store = LocalStore(tmp_path / "store")
    source = Smooth(store, Before(), payload_name="source", payload_io=JsonFileIO())
    Stage(
        store, After(2.0), [source], payload_name="stage", payload_io=JsonFileIO()
    ).load_generate()
    alone = Stage(store, After(2.0), None, payload_name="stage").explain()
    assert str(alone).endswith(
        f"differs in:\n  upstream source: key {source.key[:15]}… -> no such dependency now"
    ), str(alone)
    other = tmp_path / "other"
    Stage(other, After(2.0), None, payload_name="stage", payload_io=JsonFileIO()).load_generate()
    source_there = Smooth(other, Before(), payload_name="source")
    added = Stage(other, After(2.0), [source_there], payload_name="stage").explain()
    assert "upstream source: no such dependency then -> key k1-" in str(added), str(added)
