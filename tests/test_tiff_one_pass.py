"""OME-TIFF of a numpy array on a local store: laid out by tifffile, pixels written and hashed in one pass."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import tifffile

from persistable import Persistable, PersistableParams
from persistable import _persistable as persistable_module
from persistable._artifact import file_record
from persistable.exceptions import CorruptArtifactError
from persistable.io import OmeTiffFileIO


@dataclass
class ImageParams(PersistableParams):
    """Names one image."""

    name: str


class Image(Persistable[Any, ImageParams]):
    """Persists the array handed to load_generate()."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


def _without_uuid(data: bytes) -> bytes:
    """The file's bytes with the OME-XML's UUID (new on every write) blanked."""
    return re.sub(rb"urn:uuid:[0-9a-f-]+", b"urn:uuid:-", data)


_RNG = np.random.default_rng(7)
CASES: list[tuple[str, np.ndarray[Any, Any]]] = [
    ("ZYX", _RNG.random((4, 40, 24), dtype=np.float32)),
    ("CZYX", _RNG.integers(0, 60000, (2, 3, 16, 8), dtype=np.uint16)),
    ("YXS", _RNG.integers(0, 255, (16, 8, 3), dtype=np.uint8)),
    ("TCZYX", _RNG.random((1, 2, 1, 8, 8))),
    ("ZYX", np.asfortranarray(_RNG.random((3, 8, 8), dtype=np.float32))),
    ("YX", (_RNG.random((8, 8)) + 1j).astype(np.complex64)),
    ("YX", _RNG.integers(-5, 5, (8, 8), dtype=np.int8)),
]


@pytest.mark.parametrize(("dims", "array"), CASES, ids=[f"{d}-{a.dtype}" for d, a in CASES])
def test_the_one_pass_file_is_tifffiles_file_and_its_record_is_its_checksum(
    tmp_path: Path, dims: str, array: np.ndarray[Any, Any]
) -> None:
    """Same bytes as tifffile.imwrite with the pixels (but the UUID); the record is a fresh hash's."""
    names = ["a", "b"] if "C" in dims else None
    file_io = OmeTiffFileIO(dims=dims, channel_names=names, physical_pixel_sizes={"X": 0.2})
    ours, plain = tmp_path / "ours.ome.tiff", tmp_path / "plain.ome.tiff"
    with ours.open("w+b") as stream:
        record = file_io.save_file(array, stream)
    with plain.open("w+b") as stream:
        file_io.save(array, stream)
    assert record is not None  # written in one pass
    assert record == file_record(ours)
    assert _without_uuid(ours.read_bytes()) == _without_uuid(plain.read_bytes())
    np.testing.assert_array_equal(file_io.load_path(ours), array)
    with tifffile.TiffFile(ours) as tiff:
        assert tiff.is_ome


def test_a_local_store_writes_the_tiff_once_and_it_verifies(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The staging file is never read back whole; verify() agrees with the record; a changed pixel is caught."""
    array = _RNG.random((6, 64, 64), dtype=np.float32)

    def refuse(path: Path) -> dict[str, Any]:
        raise AssertionError(f"{path.name} was read back to hash it")

    monkeypatch.setattr(persistable_module, "file_record", refuse)
    image = Image(tmp_path / "store", ImageParams("a"), payload_io=OmeTiffFileIO(dims="ZYX"))
    image.load_generate(payload=array)
    image.verify()
    again = Image(tmp_path / "store", ImageParams("a"), payload_io=OmeTiffFileIO(dims="ZYX"))
    np.testing.assert_array_equal(again.payload, array)
    payload = Path(image.artifact_path) / image.artifact.payload_file
    data = bytearray(payload.read_bytes())
    data[len(data) // 2] ^= 0x01
    payload.write_bytes(bytes(data))
    with pytest.raises(CorruptArtifactError):
        image.verify()


@pytest.mark.parametrize(
    ("array", "file_io"),
    [
        (_RNG.random((8, 8)) > 0.5, OmeTiffFileIO(dims="YX")),
        (_RNG.random((2, 8, 8), dtype=np.float32), OmeTiffFileIO(dims="ZYX", compression="zlib")),
        (_RNG.random((8, 8)).astype(">f8"), OmeTiffFileIO(dims="YX")),
    ],
    ids=["bool", "zlib", "big-endian"],
)
def test_arrays_that_cannot_be_laid_out_are_written_the_ordinary_way(
    tmp_path: Path, array: np.ndarray[Any, Any], file_io: OmeTiffFileIO
) -> None:
    """bool pixels, a compression or a foreign byte order: save_file says so (None) and the file is whole."""
    target = tmp_path / "image.ome.tiff"
    with target.open("w+b") as stream:
        assert file_io.save_file(array, stream) is None
    np.testing.assert_array_equal(file_io.load_path(target), array)
    image = Image(tmp_path / "store", ImageParams("b"), payload_io=file_io)
    image.load_generate(payload=array)
    image.verify()
