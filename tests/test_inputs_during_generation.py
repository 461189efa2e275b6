"""Inputs that change while a payload is generated: nothing is stored under the key of the old inputs."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from persistable import File, LocalStore, Persistable, PersistableParams
from persistable.exceptions import KeyMismatchError


@dataclass
class Table(PersistableParams):
    data: File
    columns: list[str] = field(default_factory=lambda: ["a"])


class Rows(Persistable[int, Table]):
    """Reads its input file, which another writer replaces during the generation."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        path = Path(self.params.data)
        rows = len(path.read_text().splitlines())
        path.write_text("x\ny\nz\nw\n")  # a colleague's export lands meanwhile
        return rows


class SortsItsParams(Persistable[list[str], Table]):
    def _generate_payload(self, **untracked_payload_params: Any) -> list[str]:
        self.params.columns.append("b")  # changes a tracked params value in place
        return list(self.params.columns)


class Steady(Persistable[int, Table]):
    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        return len(Path(self.params.data).read_text().splitlines())


def test_an_input_file_replaced_during_generation_stores_nothing(
    local_store: LocalStore, tmp_path: Path
) -> None:
    """The file's content changed between keying and committing: KeyMismatchError, no artifact."""
    data = tmp_path / "rows.csv"
    data.write_text("x\ny\n")
    rows = Rows(local_store, Table(File(data)), None)
    key = rows.key
    with pytest.raises(KeyMismatchError, match="changed while its payload was generated"):
        rows.load_generate()
    assert not local_store.has_artifact(rows.payload_name, key)
    assert not rows.exists()


def test_params_changed_by_the_generation_store_nothing(
    local_store: LocalStore, tmp_path: Path
) -> None:
    """_generate_payload appending to a tracked list: refused, nothing stored under either key."""
    data = tmp_path / "rows.csv"
    data.write_text("x\n")
    node = SortsItsParams(local_store, Table(File(data)), None)
    key = node.key
    with pytest.raises(KeyMismatchError, match="nothing was stored"):
        node.load_generate()
    assert not local_store.has_artifact(node.payload_name, key)
    assert not node.exists()


def test_steady_inputs_commit_as_before(local_store: LocalStore, tmp_path: Path) -> None:
    """Inputs unchanged during generation: committed, and loaded again by a second object."""
    data = tmp_path / "rows.csv"
    data.write_text("x\ny\n")
    Steady(local_store, Table(File(data)), None).load_generate()
    again = Steady(local_store, Table(File(data)), None)
    again.load()
    assert again.payload == 2
