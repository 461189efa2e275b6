"""The output's checksum computed while the flow commits counts only for that very file."""

from __future__ import annotations

import os
from pathlib import Path

from persistable._artifact import file_record
from persistable.flow._checksum import PendingRecord


def _file(path: Path, size: int, byte: int = 1) -> Path:
    path.write_bytes(bytes([byte]) * size)
    return path


def test_the_record_follows_the_file_through_a_rename(tmp_path: Path) -> None:
    source = _file(tmp_path / "out.h5", 3 << 20)
    pending = PendingRecord(source)
    staged = tmp_path / "staged.h5"
    os.replace(source, staged)
    os.chmod(staged, 0o444)
    assert pending.record_for(staged) == file_record(staged)


def test_another_file_gets_no_record(tmp_path: Path) -> None:
    pending = PendingRecord(_file(tmp_path / "a.h5", 2 << 20))
    other = _file(tmp_path / "b.h5", 2 << 20)
    assert pending.record_for(other) is None


def test_a_file_changed_after_the_hash_gets_no_record(tmp_path: Path) -> None:
    path = _file(tmp_path / "out.h5", 2 << 20)
    pending = PendingRecord(path)
    pending.discard()  # hashed
    with path.open("r+b") as stream:
        stream.write(b"\x02")
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert pending.record_for(path) is None
