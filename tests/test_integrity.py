"""Integrity: damaged artifacts are caught, named, set aside (never deleted) and regenerated.

Every damage is real (bytes flipped or cut in the store's files, a pickled class
removed from disk); every check runs on a local and on a memory store, and the
download check also on the loopback S3 server.
"""

from __future__ import annotations

import importlib
import json
import sys
import textwrap
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from numpy.typing import NDArray

from persistable import LocalStore, MemoryStore, NpyFileIO, Persistable, PersistableParams, Store
from persistable.exceptions import (
    CorruptArtifactError,
    MissingPayloadClassError,
    QuarantineWarning,
    UnsupportedSchemeError,
)
from persistable.store import make_store

CAUGHT: dict[str, int] = {}


def _caught(kind: str) -> None:
    CAUGHT[kind] = CAUGHT.get(kind, 0) + 1


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Iterator[None]:
    """Print how many corruptions of each kind this module caught (for docs/reliability.md)."""
    yield
    total = sum(CAUGHT.values())
    print(f"\n[integrity] corruptions caught: {total} {json.dumps(CAUGHT, sort_keys=True)}")


@dataclass(frozen=True)
class RampParams(PersistableParams):
    """Length of the ramp."""

    n: int


class Ramp(Persistable[NDArray[np.int64], RampParams]):
    """0..n-1 as an .npy file; counts its generations."""

    default_payload_io = NpyFileIO()
    generations = 0

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.int64]:
        type(self).generations += 1
        return np.arange(self.params.n, dtype=np.int64)


class Record(Persistable[dict[str, Any], RampParams]):
    """A dict pickled with the default PickleFileIO."""

    def _generate_payload(self, **untracked_payload_params: Any) -> dict[str, Any]:
        return {"n": self.params.n, "items": list(range(self.params.n))}


@pytest.fixture(params=["local", "memory"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Store]:
    """A fresh local or memory store."""
    if request.param == "local":
        yield LocalStore(tmp_path / "store")
    else:
        name = f"integrity-{request.node.nodeid}"
        yield MemoryStore(name)
        MemoryStore.clear(name)


def read(store: Store, path: str) -> bytes:
    """The bytes of a file of the store."""
    return store.read_bytes(path)


def write(store: Store, path: str, data: bytes) -> None:
    """Overwrite a file of the store behind its back (the damage under test)."""
    local = store.local_path(path)
    if local is not None:
        local.write_bytes(data)
    elif isinstance(store, MemoryStore):
        store.files[path] = data
    else:
        fs: Any = getattr(store, "fs")  # noqa: B009 - FsspecStore only
        fs.pipe_file(f"{getattr(store, 'root')}/{path}", data)  # noqa: B009


def flip(data: bytes, at: int) -> bytes:
    """``data`` with one byte inverted at ``at`` (same size)."""
    return data[:at] + bytes([data[at] ^ 0xFF]) + data[at + 1 :]


def quarantined_files(store: Store) -> dict[str, bytes]:
    """Every file in the quarantine area, by path relative to the store root."""
    found: dict[str, bytes] = {}
    folders = [".persistable/quarantine"]
    while folders:
        folder = folders.pop()
        for name in store.list_dir(folder):
            path = f"{folder}/{name}"
            if store.exists(path):
                found[path] = store.read_bytes(path)
            else:
                folders.append(path)
    return found


def assert_quarantined_and_regenerated(
    item: Persistable[Any, Any], damaged: dict[str, bytes], check: Callable[[Any], None]
) -> None:
    """load_generate() warns, sets the damaged files aside unchanged, and commits a good artifact."""
    store = item.store
    with pytest.warns(
        QuarantineWarning, match=r"Moved the corrupt artifact .* to '\.persistable/quarantine/"
    ):
        item.load_generate()
    check(item.payload)
    item.verify()
    kept = quarantined_files(store)
    for name, data in damaged.items():
        matches = [path for path in kept if path.endswith(f"/{name}")]
        assert len(matches) == 1, (name, sorted(kept))
        assert kept[matches[0]] == data  # the damaged bytes are still there, untouched


def test_flipped_byte_is_caught_by_verify_and_quarantined(store: Store) -> None:
    """A byte flipped in the payload (same size) is caught by verify() and load(verify=True) naming the file and both checksums; load_generate() quarantines and regenerates."""
    item = Ramp(store, RampParams(n=1000))
    item.load_generate()
    path = f"{item.artifact_dir}/payload.npy"
    damaged = flip(read(store, path), 500)
    write(store, path, damaged)
    fresh = Ramp(store, RampParams(n=1000))
    with pytest.raises(
        CorruptArtifactError,
        match=r"payload\.npy has xxh3_128 \w+ and 8128 bytes, metadata\.json says \w+ and 8128",
    ):
        fresh.verify()
    with pytest.raises(CorruptArtifactError, match=r"payload\.npy"):
        fresh.load(verify=True)
    _caught("flipped byte (verify)")
    if store.local_path(path) is None:
        # Not on local disk: every read is a download, always checked against the checksum.
        with pytest.raises(CorruptArtifactError, match=r"payload\.npy has xxh3_128"):
            fresh.load()
    else:
        # Local disk: a plain load checks the size only (documented), so same-size damage
        # passes it; verify() and load(verify=True) are the checks for that.
        fresh.load()
        assert not np.array_equal(fresh.payload, np.arange(1000))


def test_flipped_byte_in_params_json_is_caught_by_verify(store: Store) -> None:
    """verify() checks every file of the artifact, not only the payload."""
    item = Ramp(store, RampParams(n=10))
    item.load_generate()
    path = f"{item.artifact_dir}/params.json"
    write(store, path, read(store, path).replace(b'"n": 10', b'"n": 11'))
    with pytest.raises(CorruptArtifactError, match=r"params\.json has xxh3_128"):
        item.verify()
    _caught("edited params.json (verify)")


def test_truncated_payload_is_caught_by_the_size_check_and_quarantined(store: Store) -> None:
    """A truncated payload fails the always-on size check of load(); load_generate() quarantines it (bytes kept) and regenerates."""
    item = Ramp(store, RampParams(n=1000))
    item.load_generate()
    path = f"{item.artifact_dir}/payload.npy"
    damaged = read(store, path)[:4000]
    write(store, path, damaged)
    fresh = Ramp(store, RampParams(n=1000))
    with pytest.raises(
        CorruptArtifactError, match=r"payload\.npy has 4000 bytes, metadata\.json says 8128"
    ):
        fresh.load()
    _caught("truncated payload (size check)")
    before = Ramp.generations
    assert_quarantined_and_regenerated(
        fresh, {"payload.npy": damaged}, lambda p: np.testing.assert_array_equal(p, np.arange(1000))
    )
    assert Ramp.generations == before + 1


def test_missing_payload_file_is_caught(store: Store) -> None:
    """A payload file listed in metadata.json but gone is a CorruptArtifactError naming it."""
    item = Ramp(store, RampParams(n=5))
    item.load_generate()
    path = f"{item.artifact_dir}/payload.npy"
    if isinstance(store, MemoryStore):
        del store.files[path]
    else:
        local = store.local_path(path)
        assert local is not None
        local.unlink()
    with pytest.raises(
        CorruptArtifactError, match=r"payload\.npy is missing although metadata\.json lists it"
    ):
        Ramp(store, RampParams(n=5)).load()
    _caught("missing payload file")


def test_invalid_metadata_json_is_caught_and_quarantined(store: Store) -> None:
    """metadata.json that is not JSON raises CorruptArtifactError naming it; load_generate() quarantines and regenerates."""
    item = Record(store, RampParams(n=3))
    item.load_generate()
    path = f"{item.artifact_dir}/metadata.json"
    damaged = read(store, path)[:-20]
    write(store, path, damaged)
    fresh = Record(store, RampParams(n=3))
    with pytest.raises(CorruptArtifactError, match=r"metadata\.json is not valid JSON"):
        fresh.load()
    _caught("invalid metadata.json")
    assert_quarantined_and_regenerated(
        fresh, {"metadata.json": damaged}, lambda p: p == {"n": 3, "items": [0, 1, 2]}
    )


def test_pickle_of_a_class_that_moved_names_the_class_and_stays(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A pickle whose class cannot be imported raises MissingPayloadClassError naming the class and the file; the intact artifact is never quarantined."""
    module_name = f"moving_module_{abs(hash(str(tmp_path)))}"
    (tmp_path / f"{module_name}.py").write_text(
        textwrap.dedent(
            """
            class Moving:
                def __init__(self, n):
                    self.n = n
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    module = importlib.import_module(module_name)

    class Holder(Persistable[Any, RampParams]):
        moved = False

        def _generate_payload(self, **untracked_payload_params: Any) -> Any:
            if type(self).moved:
                return {"n": self.params.n}
            return module.Moving(self.params.n)

    item = Holder(store, RampParams(n=4), payload_name="holder")
    item.load_generate()
    pickled = read(store, f"{item.artifact_dir}/payload.pkl")
    # The class moves away: its module is gone from disk and from the interpreter.
    (tmp_path / f"{module_name}.py").unlink()
    del sys.modules[module_name]
    importlib.invalidate_caches()
    fresh = Holder(store, RampParams(n=4), payload_name="holder")
    for call in (fresh.load, fresh.load_generate):
        with pytest.raises(
            MissingPayloadClassError,
            match=rf"Cannot load .*payload\.pkl: The pickled payload refers to {module_name}\.Moving, "
            r"which cannot be imported here .*left where it is",
        ):
            call()
    assert read(store, f"{item.artifact_dir}/payload.pkl") == pickled
    assert store.list_dir(".persistable/quarantine") == []
    fresh.verify()  # intact


def test_future_metadata_scheme_is_refused_and_never_overwritten(store: Store) -> None:
    """An artifact written by a newer release (metadata_scheme 999) is refused by load(), verify() and load_generate(), and left untouched."""
    item = Ramp(store, RampParams(n=7))
    item.load_generate()
    path = f"{item.artifact_dir}/metadata.json"
    metadata = json.loads(read(store, path))
    metadata["metadata_scheme"] = 999
    future = json.dumps(metadata).encode()
    write(store, path, future)
    before = Ramp.generations
    fresh = Ramp(store, RampParams(n=7))
    for call in (fresh.load, fresh.verify, fresh.load_generate):
        with pytest.raises(
            UnsupportedSchemeError,
            match=r"metadata_scheme 999, this persistable reads up to 2; upgrade persistable",
        ):
            call()
    _caught("future metadata scheme (refused)")
    assert Ramp.generations == before
    assert read(store, path) == future
    assert quarantined_files(store) == {}


def test_read_only_store_never_quarantines(tmp_path: Path) -> None:
    """On a read-only store a corrupt artifact raises CorruptArtifactError and nothing is moved."""
    writable = LocalStore(tmp_path / "store")
    item = Ramp(writable, RampParams(n=100))
    item.load_generate()
    payload = tmp_path / "store" / item.artifact_dir / "payload.npy"
    payload.write_bytes(payload.read_bytes()[:100])
    reader = Ramp(LocalStore(tmp_path / "store", read_only=True), RampParams(n=100))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(CorruptArtifactError, match="has 100 bytes"):
            reader.load_generate()
    assert payload.exists()
    assert not (tmp_path / "store" / ".persistable" / "quarantine").exists()


@pytest.mark.s3
def test_download_from_s3_is_always_checksummed(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """A byte flipped in an S3 payload is caught by a plain load(): every download is checked against its checksum; load_generate() quarantines and regenerates."""
    url, storage_options = s3_bucket
    store = make_store(url, storage_options=storage_options)
    item = Ramp(store, RampParams(n=1000))
    item.load_generate()
    path = f"{item.artifact_dir}/payload.npy"
    damaged = flip(read(store, path), 700)
    write(store, path, damaged)
    fresh = Ramp(store, RampParams(n=1000))
    with pytest.raises(CorruptArtifactError, match=r"payload\.npy has xxh3_128 \w+ and 8128 bytes"):
        fresh.load()
    _caught("flipped byte in an S3 download")
    assert_quarantined_and_regenerated(
        fresh, {"payload.npy": damaged}, lambda p: np.testing.assert_array_equal(p, np.arange(1000))
    )
