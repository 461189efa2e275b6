"""Big writes are hashed slice by slice, each slice just before it is written: the checksum is the one of the bytes written."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import numpy as np
import pytest

from persistable import LocalStore, NpyFileIO, Persistable, PersistableParams
from persistable._artifact import _RESERVE, _SLICE, HashingWriter
from persistable._hashing import bulk_digest
from persistable.exceptions import PayloadSerializationError


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


@pytest.mark.parametrize("size", [_SLICE - 1, _SLICE, _SLICE + 1, 5 * _SLICE + 12345])
def test_a_buffer_gets_the_checksum_of_its_bytes(size: int) -> None:
    data = np.random.default_rng(1).bytes(size)
    sink = io.BytesIO()
    writer = HashingWriter(sink)
    writer.write(b"head")
    assert writer.write(data) == len(data)
    writer.write(b"tail")
    assert sink.getvalue() == b"head" + data + b"tail"
    assert writer.record == {"size": size + 8, "xxh3_128": bulk_digest(b"head" + data + b"tail")}


def test_a_buffer_past_a_reserved_window_reaches_a_file_whole(tmp_path: Path) -> None:
    """A file sink gets disk space reserved window by window; the file holds every byte once."""
    array = np.random.default_rng(3).integers(0, 255, _RESERVE + 3 * _SLICE + 7, dtype=np.uint8)
    path = tmp_path / "big.bin"
    with path.open("wb") as stream:
        writer = HashingWriter(cast(IO[bytes], stream))
        writer.write(b"x" * 100)  # the slices of the buffer are off the file's pages
        writer.write(array.data)
        writer.flush()
        record = writer.record
    content = path.read_bytes()
    assert content == b"x" * 100 + array.tobytes()
    assert record == {"size": len(content), "xxh3_128": bulk_digest(content)}


def test_a_failing_big_write_raises_and_leaves_no_record() -> None:
    writer = HashingWriter(cast(IO[bytes], _FailingSink(after=2)))
    with pytest.raises(OSError, match="disk full"):
        writer.write(bytes(4 * _SLICE))
    with pytest.raises(OSError, match="no checksum"):
        _ = writer.record


class _WatchingSink(io.RawIOBase):
    """Records, at every write, how many bytes the watched writer's hasher had taken."""

    def __init__(self) -> None:
        super().__init__()
        self.written = 0
        self.seen: list[tuple[int, int, int]] = []
        self.writer: HashingWriter | None = None

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        assert self.writer is not None
        size = memoryview(data).nbytes
        self.seen.append((self.writer.hasher.size, self.written, size))
        self.written += size
        return size


class _SeekableWatchingSink(_WatchingSink):
    def tell(self) -> int:
        return self.written


def test_slices_after_the_first_start_on_slice_boundaries_of_the_file() -> None:
    """After a 128-byte header the first slice is short, so that no two writes share a page."""
    data = np.random.default_rng(4).bytes(3 * _SLICE)
    sink = _SeekableWatchingSink()
    writer = HashingWriter(cast(IO[bytes], sink))
    sink.writer = writer
    writer.write(b"h" * 128)
    writer.write(data)
    offsets = [written for _, written, _ in sink.seen]
    assert offsets == [0, 128, _SLICE, 2 * _SLICE, 3 * _SLICE]
    assert all(hashed == written + size for hashed, written, size in sink.seen)
    assert writer.record == {"size": 128 + len(data), "xxh3_128": bulk_digest(b"h" * 128 + data)}


def test_each_slice_is_hashed_just_before_it_is_written() -> None:
    """The hasher holds the bytes already written and the slice being written, never more."""
    data = np.random.default_rng(2).bytes(7 * _SLICE + 54321)
    sink = _WatchingSink()
    writer = HashingWriter(cast(IO[bytes], sink))
    sink.writer = writer
    writer.write(data)
    assert len(sink.seen) == 8
    assert all(hashed == written + size for hashed, written, size in sink.seen)
    assert all(size <= _SLICE for _, _, size in sink.seen)
    assert writer.record == {"size": len(data), "xxh3_128": bulk_digest(data)}


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
    assert record["size"] == payload_file.stat().st_size
    big.verify()
    again = _Big(store, _Size(mib=20))
    again.load()
    assert np.array_equal(again.payload, big.payload)


class _HalfThenFailIO(NpyFileIO):
    """Writes a big part of the payload, then fails, as a serializer may half way."""

    def save(self, payload: Any, stream: IO[bytes]) -> None:
        stream.write(np.ascontiguousarray(payload).view(np.uint8).data[: 6 * _SLICE])
        raise ValueError("the serializer broke half way")


def test_a_writer_failing_half_way_leaves_no_artifact(tmp_path: Path) -> None:
    store = LocalStore(tmp_path)
    big = _Big(store, _Size(mib=4), payload_io=_HalfThenFailIO())
    with pytest.raises(PayloadSerializationError, match="half way"):
        big.load_generate()
    assert not big.exists()
    staging = tmp_path / ".persistable" / "staging"
    assert not staging.exists() or not any(staging.iterdir())
    fresh = _Big(store, _Size(mib=4))
    fresh.load_generate()
    fresh.verify()
