"""CheckedZarrStore: byte ranges of a checked file, and a changed file refused, read by zarr's own store."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
import zarr
from zarr.abc.store import OffsetByteRequest, RangeByteRequest, SuffixByteRequest
from zarr.core.buffer import default_buffer_prototype

from persistable._artifact import bytes_record
from persistable.exceptions import CorruptArtifactError
from persistable.io._zarr_checked import CheckedZarrStore

DATA = bytes(range(256)) * 40  # 10 KiB, every byte value at many offsets


def _store(folder: Path) -> CheckedZarrStore:
    (folder / "c").mkdir(parents=True)
    (folder / "c" / "0").write_bytes(DATA)
    inner = zarr.storage.LocalStore(folder, read_only=True)
    return CheckedZarrStore(inner, {"c/0": bytes_record(DATA)}, str(folder), "held/k1-test")


def _get(store: CheckedZarrStore, byte_range: Any = None) -> bytes | None:
    found = asyncio.run(store.get("c/0", default_buffer_prototype(), byte_range))
    return None if found is None else found.to_bytes()


def test_every_byte_range_of_a_checked_file_is_the_files_own(tmp_path: Path) -> None:
    """Whole file, start-end, offset, suffix (also empty and longer than the file) slice the checked bytes."""
    store = _store(tmp_path / "array")
    assert _get(store) == DATA
    assert _get(store, RangeByteRequest(100, 1100)) == DATA[100:1100]
    assert _get(store, RangeByteRequest(0, 0)) == b""
    assert _get(store, OffsetByteRequest(9000)) == DATA[9000:]
    assert _get(store, SuffixByteRequest(17)) == DATA[-17:]
    assert _get(store, SuffixByteRequest(0)) == b""
    assert _get(store, SuffixByteRequest(len(DATA) + 5)) == DATA
    assert asyncio.run(store.get("c/1", default_buffer_prototype())) is None  # not listed


def test_a_changed_byte_fails_every_range_of_the_file(tmp_path: Path) -> None:
    """One flipped byte outside the range asked for still fails the read: the whole file is checked."""
    store = _store(tmp_path / "array")
    changed = bytearray(DATA)
    changed[-1] ^= 0xFF
    (tmp_path / "array" / "c" / "0").write_bytes(bytes(changed))
    for byte_range in (None, RangeByteRequest(0, 10), SuffixByteRequest(3)):
        with pytest.raises(
            CorruptArtifactError, match=r"differs from the file metadata\.json lists"
        ):
            _get(store, byte_range)
