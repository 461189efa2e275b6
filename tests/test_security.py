"""Security: names and keys never address a path outside the store; untrusted pickles are refused.

The crafted inputs are real files: a hand-edited ``metadata.json`` whose payload file
points outside, a secret file beside the store that must never be read, and stores
opened with ``trusted=False`` as a user would open a colleague's folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from persistable import (
    FileIO,
    JsonFileIO,
    LocalStore,
    NpyFileIO,
    Persistable,
    PersistableParams,
    PickleFileIO,
)
from persistable.exceptions import (
    CorruptArtifactError,
    ForeignArtifactWarning,
    StoreConfigurationError,
    UntrustedPayloadError,
)


@dataclass(frozen=True)
class TagParams(PersistableParams):
    """A tag."""

    tag: str


class Anything(Persistable[Any, TagParams]):
    """A small payload, written with whatever payload_io is given."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        if isinstance(self.payload_io, NpyFileIO):
            return np.arange(4)
        return {"tag": self.params.tag}


@pytest.mark.parametrize("crafted", ["../../secret.pkl", "/etc/passwd", "../secret.pkl", ".hidden"])
def test_crafted_payload_file_in_metadata_is_never_read(tmp_path: Path, crafted: str) -> None:
    """A metadata.json edited to name a payload file outside the artifact raises CorruptArtifactError and the outside file is never opened."""
    root = tmp_path / "store"
    item = Anything(root, TagParams("a"), payload_name="thing")
    item.load_generate()
    # A pickle beside the store that would run code if it were loaded.
    (tmp_path / "secret.pkl").write_bytes(b"cos\nsystem\n(S'echo owned'\ntR.")
    metadata_path = root / item.artifact_dir / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["payload_file"] = crafted
    metadata["files"][crafted] = {"size": 10, "xxh3_128": "0" * 32}
    metadata_path.write_text(json.dumps(metadata))
    with pytest.raises(
        CorruptArtifactError, match=r"names the payload file .* which is not a plain file name"
    ):
        Anything(root, TagParams("a"), payload_name="thing").load()


@pytest.mark.parametrize(
    ("payload_name", "key"),
    [("..", "x"), ("thing", "../../outside"), ("thing", "/etc"), ("a/../..", "k"), ("thing", "")],
)
def test_store_refuses_paths_outside_its_root(tmp_path: Path, payload_name: str, key: str) -> None:
    """Store methods given crafted names or keys raise StoreConfigurationError and create nothing outside the root."""
    root = tmp_path / "deep" / "store"
    store = LocalStore(root)
    before = sorted(p.as_posix() for p in tmp_path.rglob("*"))
    with pytest.raises(
        StoreConfigurationError, match=r"is not a plain relative path inside the store"
    ):
        store.read_metadata(payload_name, key)
    with pytest.raises(StoreConfigurationError):
        store.begin(store.artifact_dir(payload_name, key))
    with pytest.raises(StoreConfigurationError), store.lock(payload_name, key):
        pass
    assert sorted(p.as_posix() for p in tmp_path.rglob("*")) == before


def test_untrusted_store_refuses_pickle_and_loads_safe_formats(tmp_path: Path) -> None:
    """A store opened with trusted=False refuses to unpickle (UntrustedPayloadError) but loads .npy and JSON artifacts."""
    root = tmp_path / "colleague"
    ios: list[FileIO[Any]] = [PickleFileIO(), NpyFileIO(), JsonFileIO()]
    for io in ios:
        Anything(root, TagParams(io.name), payload_name=io.name, payload_io=io).load_generate()
    untrusted = LocalStore(root, read_only=True, trusted=False)
    with pytest.raises(
        UntrustedPayloadError, match=r"Refusing to unpickle .* the store is not trusted"
    ):
        Anything(untrusted, TagParams("pickle"), payload_name="pickle").load()
    npy: Persistable[NDArray[Any], TagParams] = Anything(
        untrusted, TagParams("npy"), payload_name="npy", payload_io=NpyFileIO()
    )
    npy.load()
    np.testing.assert_array_equal(npy.payload, np.arange(4))
    as_json = Anything(untrusted, TagParams("json"), payload_name="json", payload_io=JsonFileIO())
    as_json.load()
    assert as_json.payload == {"tag": "json"}


def test_untrusted_fallback_store_refuses_pickle(tmp_path: Path) -> None:
    """A colleague's store given as an untrusted fallback store is searched, but its pickles are refused with UntrustedPayloadError."""
    theirs = tmp_path / "colleague"
    Anything(theirs, TagParams("p"), payload_name="thing").load_generate()
    mine = tmp_path / "mine"
    item = Anything(
        mine,
        TagParams("p"),
        payload_name="thing",
        fallback_stores=[LocalStore(theirs, read_only=True, trusted=False)],
    )
    with pytest.raises(UntrustedPayloadError):
        item.load()
    trusting = Anything(
        mine, TagParams("p"), payload_name="thing", fallback_stores=[LocalStore(theirs)]
    )
    trusting.load()
    assert trusting.payload == {"tag": "p"}


def test_metadata_and_params_are_parsed_as_data_only(tmp_path: Path) -> None:
    """metadata.json holding Python-looking text is parsed as JSON data: nothing is evaluated, the artifact is judged on its checksums."""
    root = tmp_path / "store"
    item = Anything(root, TagParams("d"), payload_name="thing", payload_io=JsonFileIO())
    item.load_generate()
    marker = tmp_path / "evaluated"
    metadata_path = root / item.artifact_dir / "metadata.json"
    metadata = json.loads(metadata_path.read_text())
    metadata["code"]["class"] = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    metadata_path.write_text(json.dumps(metadata))
    loaded = Anything(root, TagParams("d"), payload_name="thing", payload_io=JsonFileIO())
    with pytest.warns(ForeignArtifactWarning, match="written by the class"):
        loaded.load(verify=True)
    assert loaded.payload == {"tag": "d"}
    assert not marker.exists()
