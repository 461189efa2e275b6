"""The cheap write path of small artifacts keeps every guarantee: whole files, checksums, leftovers."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, cast

import pytest

from persistable import Persistable, PersistableParams
from persistable._artifact import HashingWriter
from persistable._spool import SpoolingWriter
from persistable.store import Transaction
from persistable.store._local import _host_tag


@dataclass
class _Params(PersistableParams):
    size: int


class _Blob(Persistable[bytes, _Params]):
    def _generate_payload(self, **untracked_payload_params: Any) -> bytes:
        return bytes(range(256)) * (self.params.size // 256)


class _Recording(Transaction):
    """A transaction that notes how each file arrives (whole, or as a stream)."""

    def __init__(self) -> None:
        self.whole: dict[str, bytes] = {}
        self.streamed: dict[str, Any] = {}

    def open_write(self, name: str) -> IO[bytes]:
        import io

        stream = io.BytesIO()
        stream.close = lambda: None  # type: ignore[method-assign]  # keep the bytes readable
        self.streamed[name] = stream
        return stream

    def write_bytes(self, name: str, data: bytes) -> None:
        self.whole[name] = data

    def commit(self, metadata: bytes) -> bool:
        return True

    def abort(self) -> None:
        pass


def test_a_small_payload_is_written_whole_and_a_big_one_streams() -> None:
    small, big = _Recording(), _Recording()
    with HashingWriter(cast(IO[bytes], SpoolingWriter(small, "p", limit=10))) as writer:
        writer.write(b"12345")
        writer.write(b"678")
    assert small.whole == {"p": b"12345678"}
    assert not small.streamed
    assert writer.record["size"] == 8
    with HashingWriter(cast(IO[bytes], SpoolingWriter(big, "p", limit=10))) as writer:
        writer.write(b"12345")
        writer.write(b"6789012")
    assert not big.whole
    assert big.streamed["p"].getvalue() == b"123456789012"


def test_asking_for_the_descriptor_opens_the_file_with_what_was_buffered() -> None:
    recording = _Recording()
    spool = SpoolingWriter(recording, "p")
    spool.write(b"abc")
    # A BytesIO has no descriptor, but the file was opened for it first.
    with pytest.raises(OSError, match="fileno"):
        spool.fileno()
    spool.write(b"def")
    assert spool.tell() == 6
    spool.close()
    assert recording.streamed["p"].getvalue() == b"abcdef"
    assert not recording.whole


@pytest.mark.parametrize("size", [1024, (1 << 20) + 4096])
def test_committed_files_match_their_checksums(tmp_path: Path, size: int) -> None:
    blob = _Blob(tmp_path, _Params(size))
    blob.load_generate()
    blob.verify()  # every file against the sizes and xxh3 of metadata.json
    folder = Path(blob.artifact_path)
    metadata_text = (folder / "metadata.json").read_text("utf-8")
    metadata = json.loads(metadata_text)
    assert metadata["files"]["payload.pkl"]["size"] == (folder / "payload.pkl").stat().st_size
    assert len(metadata_text.splitlines()) > len(metadata)  # one item per line, not one line
    assert json.loads((folder / "params.json").read_text("utf-8")) == {"size": size}
    again = _Blob(tmp_path, _Params(size))
    again.load()
    assert again.payload == blob.payload
    assert sorted(os.listdir(tmp_path / ".persistable" / "staging")) == []


def test_a_staging_leftover_of_a_dead_writer_is_still_removed(tmp_path: Path) -> None:
    _Blob(tmp_path, _Params(256)).load_generate()
    staging = tmp_path / ".persistable" / "staging"
    leftover = staging / f"{'0' * 32}-999999999-{_host_tag()}"  # no such pid
    leftover.mkdir()
    _Blob(tmp_path, _Params(512)).load_generate()
    assert not leftover.exists()
