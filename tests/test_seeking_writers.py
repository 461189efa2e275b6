"""FileIOs that seek back while saving (TIFF, HDF5) write a local store's staging file in place, checksummed as written."""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, ClassVar

import pytest

from persistable import Persistable, PersistableParams
from persistable.io import FileIO, Hdf5FileIO, OmeTiffFileIO
from persistable.store import MemoryStore


class PatchingFileIO(FileIO[bytes]):
    """Writes a placeholder header, the body, then seeks back to fill the header in."""

    name: ClassVar[str] = "test-patching"
    suffix: ClassVar[str] = ".patched"
    seeks_on_save: ClassVar[bool] = True
    streams: ClassVar[list[str]] = []

    def save(self, payload: bytes, stream: IO[bytes]) -> None:
        type(self).streams.append(type(stream).__name__)
        if not stream.seekable():
            buffer = io.BytesIO()
            self.save(payload, buffer)
            stream.write(buffer.getvalue())
            return
        stream.write(b"\0" * 8)
        stream.write(payload)
        stream.seek(0)
        stream.write(len(payload).to_bytes(8, "little"))

    def load(self, stream: IO[bytes]) -> bytes:
        size = int.from_bytes(stream.read(8), "little")
        return stream.read(size)


@dataclass
class BlobParams(PersistableParams):
    """Names one blob."""

    name: str


class Blob(Persistable[Any, BlobParams]):
    """Persists the payload handed to load_generate()."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


def test_a_seeking_writer_patches_the_staging_file_and_its_checksum_holds(tmp_path: Path) -> None:
    """On a local store the writer gets a real, seekable file; the recorded checksum is the final content's.

    1.2 MB: past the size from which a staging file is hashed through a memory map, and
    verify() (which streams) agrees with it.
    """
    PatchingFileIO.streams.clear()
    made = Blob(tmp_path, BlobParams("b"), payload_io=PatchingFileIO())
    made.load_generate(payload=b"body" * 300_000)
    assert PatchingFileIO.streams == ["BufferedRandom"]
    made.verify()
    again = Blob(tmp_path, BlobParams("b"), payload_io=PatchingFileIO())
    again.load(verify=True)
    assert again.payload == b"body" * 300_000
    assert Path(made.artifact_path, "payload.patched").read_bytes()[:8] == (1_200_000).to_bytes(
        8, "little"
    )


def test_a_seeking_writer_streams_to_other_stores() -> None:
    """A store without a local staging file still gets a stream (the writer spools it itself)."""
    PatchingFileIO.streams.clear()
    store = MemoryStore()
    Blob(store, BlobParams("m"), payload_io=PatchingFileIO()).load_generate(payload=b"x" * 10)
    assert PatchingFileIO.streams[0] != "BufferedRandom"
    again = Blob(store, BlobParams("m"), payload_io=PatchingFileIO())
    again.load(verify=True)
    assert again.payload == b"x" * 10


@pytest.mark.parametrize("file_io", [OmeTiffFileIO(dims="YX"), Hdf5FileIO()], ids=["tiff", "hdf5"])
def test_tiff_and_hdf5_write_in_place(tmp_path: Path, file_io: Any) -> None:
    """OME-TIFF and HDF5 declare that they seek, so a local store hands them the staging file."""
    import numpy as np

    assert type(file_io).seeks_on_save
    data = np.arange(64, dtype=np.uint16).reshape(8, 8)
    made = Blob(tmp_path, BlobParams(file_io.name), payload_io=file_io)
    made.load_generate(payload=data)
    made.verify()
    again = Blob(tmp_path, BlobParams(file_io.name), payload_io=file_io)
    again.load(verify=True)
    assert np.array_equal(np.asarray(again.payload), data)
