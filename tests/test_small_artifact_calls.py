"""The short paths of a small artifact keep their checks: whole reads, lock records, pids."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import numpy as np
import pytest

from persistable import LocalStore, NpyFileIO, Persistable, PersistableParams, PickleFileIO
from persistable._ids import process_id
from persistable.exceptions import CorruptArtifactError
from persistable.store._locks import local_lock


@dataclass
class IndexParams(PersistableParams):
    index: int


class Numbers(Persistable[Any, IndexParams]):
    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return np.arange(self.params.index + 3, dtype=np.float64)


class CountingPickle(PickleFileIO[Any]):
    """Records what each load was given (a stream or a path)."""

    seen: ClassVar[list[str]] = []

    def load(self, stream: IO[bytes]) -> Any:
        type(self).seen.append(type(stream).__name__)
        return super().load(stream)


def test_a_small_payload_read_whole_loads_the_committed_bytes_and_checks_their_length(
    local_store: LocalStore,
) -> None:
    """A small local payload is loaded from its bytes; a longer or shorter file is refused."""
    made = Numbers(local_store, IndexParams(2), payload_io=CountingPickle())
    made.load_generate()
    CountingPickle.seen.clear()
    again = Numbers(local_store, IndexParams(2), payload_io=CountingPickle())
    again.load()
    np.testing.assert_array_equal(again.payload, np.arange(5, dtype=np.float64))
    assert CountingPickle.seen == ["BytesIO"]
    payload = local_store.root / made.artifact_dir / "payload.pkl"
    data = payload.read_bytes()
    for changed in (data + b"\0", data[:-1]):
        payload.write_bytes(changed)
        with pytest.raises(CorruptArtifactError, match=r"bytes, metadata\.json says"):
            Numbers(local_store, IndexParams(2), payload_io=CountingPickle()).load()
    payload.unlink()
    with pytest.raises(CorruptArtifactError, match=r"missing although metadata\.json lists it"):
        Numbers(local_store, IndexParams(2), payload_io=CountingPickle()).load()


def test_a_fileio_with_its_own_load_path_still_gets_the_path(local_store: LocalStore) -> None:
    """Memory-mapped ``.npy`` loads map the committed file (no whole read in between)."""
    Numbers(local_store, IndexParams(4), payload_io=NpyFileIO(mmap_mode="r")).load_generate()
    again = Numbers(local_store, IndexParams(4), payload_io=NpyFileIO(mmap_mode="r"))
    again.load()
    assert isinstance(again.payload, np.memmap)
    np.testing.assert_array_equal(again.payload, np.arange(7, dtype=np.float64))


def test_the_lock_record_replaces_a_longer_one_left_by_a_killed_holder(tmp_path: Path) -> None:
    """A lock file that still holds a longer record is cut to the new holder's record."""
    folder = tmp_path / ".persistable" / "locks" / "numbers"
    folder.mkdir(parents=True)
    path = folder / "k1-abc.lock"
    path.write_text(json.dumps({"owner": "x" * 500, "host": "gone", "pid": 1}))
    with local_lock(str(tmp_path), str(tmp_path), "numbers", "k1-abc", timeout=5):
        record = json.loads(path.read_text())
        assert record["pid"] == os.getpid()
        assert record["owner"] != "x" * 500
    assert not path.exists()
    with local_lock(str(tmp_path), str(tmp_path), "numbers", "k1-abc", timeout=5):
        assert json.loads(path.read_text())["pid"] == os.getpid()


def test_the_process_id_is_the_child_s_after_fork() -> None:
    """The pid read once per process is the child's own after ``os.fork``."""
    assert process_id() == os.getpid()
    read, write = os.pipe()
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os.write(write, f"{process_id()} {os.getpid()}".encode())
        os._exit(0)
    os.close(write)
    _, status = os.waitpid(child, 0)
    seen, actual = os.read(read, 100).decode().split()
    os.close(read)
    assert os.waitstatus_to_exitcode(status) == 0
    assert seen == actual == str(child)
