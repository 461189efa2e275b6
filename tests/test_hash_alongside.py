"""Big writes are hashed in a second thread: the checksum is still the one of the bytes written."""

from __future__ import annotations

import io
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pytest

from persistable import LocalStore, NpyFileIO, Persistable, PersistableParams
from persistable._artifact import _HASH_ALONGSIDE_FROM, HashingWriter
from persistable._hashing import bulk_digest


class _FailingSink(io.RawIOBase):
    def __init__(self, after: int) -> None:
        super().__init__()
        self.left = after

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        self.left -= 1
        if self.left < 0:
            raise OSError("disk full")
        return memoryview(data).nbytes


def test_a_big_buffer_gets_the_checksum_of_its_bytes() -> None:
    data = np.random.default_rng(1).bytes(_HASH_ALONGSIDE_FROM + 12345)
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    assert writer.write(data) == len(data)
    writer.write(b"tail")
    assert sink.getvalue() == data + b"tail"
    assert writer.record == {"size": len(data) + 4, "xxh3_128": bulk_digest(data + b"tail")}


def test_a_failing_big_write_raises_and_leaves_no_thread() -> None:
    before = {thread.ident for thread in threading.enumerate()}
    writer = HashingWriter(cast(IO[bytes], _FailingSink(after=2)))
    with pytest.raises(OSError, match="disk full"):
        writer.write(bytes(_HASH_ALONGSIDE_FROM))
    assert {thread.ident for thread in threading.enumerate()} == before


@dataclass
class _Size(PersistableParams):
    mib: int


class _Big(Persistable[Any, _Size]):
    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return np.arange(self.params.mib * (1 << 20) // 8, dtype=np.float64)


def test_a_big_artifact_verifies_and_loads(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    big = _Big(store, _Size(mib=20))
    big.load_generate()
    payload_file = Path(str(big.artifact_path)) / big.payload_file
    record = big.metadata["files"][big.payload_file]
    assert record["xxh3_128"] == bulk_digest(payload_file.read_bytes())
    big.verify()
    again = _Big(store, _Size(mib=20))
    again.load()
    assert np.array_equal(again.payload, big.payload)


class _WatchingSink(io.RawIOBase):
    """Records, at every write, how many bytes the watched writer's hasher had taken."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.hashed_before: list[tuple[int, int]] = []
        self.writer: HashingWriter | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        assert self.writer is not None
        self.hashed_before.append((self.writer.hasher.size, self.written))
        self.written += memoryview(data).nbytes
        return memoryview(data).nbytes


def test_the_hashing_thread_hashes_only_bytes_already_written() -> None:
    """It trails the writes (each slice is hashed after the write read it), and gets them all."""
    data = np.random.default_rng(2).bytes(_HASH_ALONGSIDE_FROM + 54321)
    sink = _WatchingSink()
    writer = HashingWriter(cast(IO[bytes], sink))
    sink.writer = writer
    writer.write(data)
    assert len(sink.hashed_before) > 2
    assert all(hashed <= written for hashed, written in sink.hashed_before)
    assert writer.record == {"size": len(data), "xxh3_128": bulk_digest(data)}
