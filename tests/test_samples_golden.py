"""Frozen sample keys, and the per-call memos of the Cache-hit path that must not go stale."""

from __future__ import annotations

from pathlib import Path

import pytest
from _samples_nodes import Add, Number, golden_specimens

from persistable._hashing import KEY_SCHEME
from persistable.samples import Compose, sample_key
from persistable.samples._run import Cache
from persistable.store import LocalStore

#: Keys of tests/_samples_nodes.golden_specimens(): a string, a big-endian strided array, a
#: bool array, NaN, a nested model with a set, a list holding a model, a history entry and a
#: structured array. They must NEVER change without a KEY_SCHEME bump: every cached
#: sample users have is stored under them.
GOLDEN_SAMPLE_KEYS = {
    "plain": "k1-87aa4ed6127bade6ebd5fe8c804fd664ea326b9398865786916fa48387be4994",
    "arrays": "k1-4d431416edc0d2a13a9300c4e1d17629df309ce081459fa109794001a0fcaf80",
    "nested": "k1-eb53b05aab24433fa4a8c0ff11968bbad1da699cee69cd5e578593abeb038f69",
    "history": "k1-b381cb278cd526606b58341bcb6d2ce0dcc5f617304e5b132f8e21d7fbf4b083",
}


def test_golden_sample_keys_never_change() -> None:
    """sample_key of representative samples equals the frozen digests."""
    assert KEY_SCHEME == 1, "KEY_SCHEME changed: recompute GOLDEN_SAMPLE_KEYS for the new scheme"
    found = {name: sample_key(sample) for name, sample in golden_specimens().items()}
    assert found == GOLDEN_SAMPLE_KEYS
    # Twice: the per-class memo of field names gives the same keys as its first fill.
    assert {name: sample_key(sample) for name, sample in golden_specimens().items()} == found


class _MovingFolder:
    """An os.PathLike whose folder changes between calls (not an immutable str or Path)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __fspath__(self) -> str:
        return str(self.path)


def test_a_store_given_as_a_pathlike_that_moves_follows_it(tmp_path: Path) -> None:
    """The same PathLike object pointing elsewhere on the next call writes there, not into the first folder."""
    where = _MovingFolder(tmp_path / "one")
    pipeline = Compose([Cache(Add(step=1))])
    assert pipeline(Number(id="a"), store=where).value == 1
    where.path = tmp_path / "two"
    assert pipeline(Number(id="a"), store=where).value == 1
    assert LocalStore(tmp_path / "one").list_keys("add")
    assert LocalStore(tmp_path / "two").list_keys("add")


def test_the_same_absolute_folder_object_keeps_its_store(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An absolute Path passed again is the same store; a relative str still follows the cwd."""
    pipeline = Compose([Cache(Add(step=1))])
    folder = tmp_path / "cache"
    pipeline(Number(id="a"), store=folder)
    assert pipeline._store(folder) is pipeline._store(folder)
    (tmp_path / "x").mkdir()
    (tmp_path / "y").mkdir()
    monkeypatch.chdir(tmp_path / "x")
    pipeline(Number(id="b"), store="rel")
    monkeypatch.chdir(tmp_path / "y")
    pipeline(Number(id="b"), store="rel")
    assert LocalStore(tmp_path / "x" / "rel").list_keys("add")
    assert LocalStore(tmp_path / "y" / "rel").list_keys("add")
