"""Read-through fallback stores: searched before generating; new artifacts go to the primary store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest

from persistable import MemoryStore, Persistable, PersistableParams, make_store
from persistable.exceptions import ArtifactNotFoundError, UntrustedPayloadError
from persistable.store import LocalStore


@dataclass
class CubeParams(PersistableParams):
    """Side length."""

    side: int


class Cube(Persistable[int, CubeParams]):
    """side ** 3, counting generations."""

    generated: ClassVar[int] = 0

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        type(self).generated += 1
        return int(self.params.side**3)


@pytest.fixture
def colleague() -> Iterator[MemoryStore]:
    """A colleague's store that already holds Cube(side=3)."""
    name = f"colleague-{uuid.uuid4().hex}"
    store = MemoryStore(name)
    Cube(store, CubeParams(side=3)).load_generate()
    yield store
    MemoryStore.clear(name)


def test_fallback_is_loaded_instead_of_generating(colleague: MemoryStore, tmp_path: Path) -> None:
    """An artifact found in a fallback store is loaded, and the primary store stays empty."""
    before = Cube.generated
    cube = Cube(tmp_path / "mine", CubeParams(side=3), fallback_stores=[colleague])
    cube.load_generate()
    assert cube.payload == 27
    assert Cube.generated == before
    assert list(LocalStore(tmp_path / "mine").iter_artifacts()) == []


def test_copy_from_fallback_fills_the_primary_store(colleague: MemoryStore, tmp_path: Path) -> None:
    """With copy_from_fallback, the artifact found in the fallback is copied, verified, into data_dir."""
    cube = Cube(
        tmp_path / "mine",
        CubeParams(side=3),
        fallback_stores=[colleague],
        copy_from_fallback=True,
    )
    cube.load()
    mine = Cube(tmp_path / "mine", CubeParams(side=3))
    mine.load(verify=True)
    assert mine.payload == 27
    assert mine.metadata == colleague.read_metadata("cube", cube.key)


def test_missing_everywhere_generates_into_the_primary(
    colleague: MemoryStore, tmp_path: Path
) -> None:
    """A key no store has is generated into data_dir, never into a fallback."""
    before = Cube.generated
    cube = Cube(tmp_path / "mine", CubeParams(side=4), fallback_stores=[colleague])
    with pytest.raises(ArtifactNotFoundError):
        cube.load()
    cube.load_generate()
    assert Cube.generated == before + 1
    assert LocalStore(tmp_path / "mine").list_keys("cube") == [cube.key]
    assert not colleague.has_artifact("cube", cube.key)


def test_fallback_urls_are_opened_read_only(colleague: MemoryStore, tmp_path: Path) -> None:
    """Fallbacks given as strings are opened read-only and searched in order."""
    empty = tmp_path / "empty"
    cube = Cube(tmp_path / "mine", CubeParams(side=3), fallback_stores=[str(empty), colleague.url])
    assert [store.read_only for store in cube.fallback_stores] == [True, True]
    cube.load()
    assert cube.payload == 27


def test_untrusted_fallback_refuses_pickles(colleague: MemoryStore, tmp_path: Path) -> None:
    """A fallback store marked untrusted is not unpickled from."""
    untrusted = MemoryStore(colleague.name, read_only=True)
    untrusted.trusted = False
    cube = Cube(tmp_path / "mine", CubeParams(side=3), fallback_stores=[untrusted])
    with pytest.raises(UntrustedPayloadError):
        cube.load()


@pytest.mark.s3
def test_read_only_s3_fallback(s3_bucket: tuple[str, dict[str, Any]], tmp_path: Path) -> None:
    """A colleague's S3 cache, opened read-only, serves artifacts to a local primary store."""
    url, options = s3_bucket
    Cube(url, CubeParams(side=5), storage_options=options).load_generate()
    shared = make_store(url, storage_options=options, read_only=True)
    before = Cube.generated
    cube = Cube(
        tmp_path / "mine", CubeParams(side=5), fallback_stores=[shared], copy_from_fallback=True
    )
    cube.load_generate()
    assert cube.payload == 125
    assert Cube.generated == before
    assert LocalStore(tmp_path / "mine").list_keys("cube") == [cube.key]
