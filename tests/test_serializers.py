"""The science serializers: each passes FileIOTests, round-trips through a local and an S3 store, and refuses what it cannot keep."""

from __future__ import annotations

import importlib
import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from persistable import Persistable, PersistableParams
from persistable.exceptions import PayloadSerializationError
from persistable.io import (
    CsvFileIO,
    FileIO,
    Hdf5FileIO,
    JpegFileIO,
    OmeTiffFileIO,
    ParquetFileIO,
    PngFileIO,
    image_file_io,
)
from persistable.testing import FileIOTests, assert_same_payload
from persistable.testing._fileio import arrays


def _frames(*, nan: bool, empty: bool) -> st.SearchStrategy[pd.DataFrame]:
    rows = st.integers(min_value=0 if empty else 1, max_value=6)
    floats = st.floats(allow_nan=nan, allow_infinity=False)
    words = st.text("abcxyz", max_size=5).map(lambda text: f"s_{text}")

    def build(count: int, draw: st.DataObject) -> pd.DataFrame:
        frame: pd.DataFrame = pd.DataFrame(
            {
                "i": np.array(
                    draw.draw(
                        st.lists(st.integers(-(2**62), 2**62), min_size=count, max_size=count)
                    ),
                    dtype=np.int64,
                ),
                "f": np.array(
                    draw.draw(st.lists(floats, min_size=count, max_size=count)), dtype=np.float64
                ),
                "s": pd.Series(
                    draw.draw(st.lists(words, min_size=count, max_size=count)), dtype=str
                ),
                "b": np.array(
                    draw.draw(st.lists(st.booleans(), min_size=count, max_size=count)), dtype=bool
                ),
            }
        )
        return frame

    return st.tuples(rows, st.data()).map(lambda pair: build(*pair))


class _FrameTests(FileIOTests[pd.DataFrame]):
    def assert_same(self, expected: pd.DataFrame, actual: pd.DataFrame) -> None:
        pd.testing.assert_frame_equal(actual, expected, check_exact=True)


class TestParquetFileIO(_FrameTests):
    """ParquetFileIO keeps dtypes, NaN and empty frames."""

    def make_io(self) -> FileIO[pd.DataFrame]:
        return ParquetFileIO()

    def payloads(self) -> st.SearchStrategy[pd.DataFrame]:
        return _frames(nan=True, empty=True)


class TestCsvFileIO(_FrameTests):
    """CsvFileIO round-trips str, int, float and bool columns."""

    def make_io(self) -> FileIO[pd.DataFrame]:
        return CsvFileIO()

    def payloads(self) -> st.SearchStrategy[pd.DataFrame]:
        return _frames(nan=False, empty=False)


class TestHdf5FileIO(FileIOTests[Any]):
    """Hdf5FileIO round-trips numeric arrays and mappings of them."""

    def make_io(self) -> FileIO[Any]:
        return Hdf5FileIO()

    def payloads(self) -> st.SearchStrategy[Any]:
        numeric = arrays(native_byte_order=True).filter(lambda array: array.dtype.kind in "biufc")
        names = st.text("abcdef", min_size=1, max_size=4)
        return numeric | st.dictionaries(names, numeric, min_size=1, max_size=3)


_OME_DTYPES = st.sampled_from(
    ["bool", "int8", "int16", "int32", "uint8", "uint16", "uint32", "float32", "float64"]
)


class TestOmeTiffFileIO(FileIOTests[Any]):
    """OmeTiffFileIO round-trips CZYX arrays of every OME pixel type."""

    max_examples = 15

    def make_io(self) -> FileIO[Any]:
        return OmeTiffFileIO(dims="CZYX", channel_names=["dna", "membrane"])

    def payloads(self) -> st.SearchStrategy[Any]:
        shapes = st.tuples(st.just(2), st.integers(1, 3), st.integers(1, 9), st.integers(1, 9))
        return _OME_DTYPES.flatmap(lambda dtype: hnp.arrays(dtype, shapes))


class TestPngFileIO(FileIOTests[Any]):
    """PngFileIO round-trips grey, bool, 16-bit and RGB(A) arrays exactly."""

    def make_io(self) -> FileIO[Any]:
        return PngFileIO()

    def payloads(self) -> st.SearchStrategy[Any]:
        side = st.integers(1, 12)
        grey = st.sampled_from(["uint8", "uint16", "bool"]).flatmap(
            lambda dtype: hnp.arrays(dtype, st.tuples(side, side))
        )
        color = st.sampled_from([2, 3, 4]).flatmap(
            lambda samples: hnp.arrays("uint8", st.tuples(side, side, st.just(samples)))
        )
        return grey | color


@dataclass
class FixedParams(PersistableParams):
    """Names one payload."""

    name: str


class Fixed(Persistable[Any, FixedParams]):
    """Persists the payload handed to load_generate()."""

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["payload"]


def _image() -> np.ndarray[Any, Any]:
    return np.random.default_rng(3).integers(0, 4000, (2, 3, 32, 24), dtype=np.uint16)


CASES: list[tuple[str, Any, Any]] = [
    ("parquet", ParquetFileIO(), pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})),
    ("csv", CsvFileIO(), pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})),
    ("hdf5", Hdf5FileIO(), {"raw": _image(), "mask": _image() > 2000}),
    ("ome-tiff", OmeTiffFileIO(dims="CZYX", channel_names=["a", "b"]), _image()),
    ("png", PngFileIO(), _image()[0, 0]),
]


def _same(expected: Any, actual: Any) -> None:
    if isinstance(expected, pd.DataFrame):
        pd.testing.assert_frame_equal(actual, expected)
    else:
        assert_same_payload(expected, actual)


@pytest.mark.parametrize(("name", "file_io", "payload"), CASES, ids=[case[0] for case in CASES])
def test_roundtrip_on_a_local_store(tmp_path: Path, name: str, file_io: Any, payload: Any) -> None:
    """Each serializer persists and loads through a local store, checksummed, under its name."""
    made = Fixed(tmp_path, FixedParams(name), payload_io=file_io)
    made.load_generate(payload=payload)
    again = Fixed(tmp_path, FixedParams(name), payload_io=file_io)
    again.load(verify=True)
    _same(payload, again.payload)
    assert made.metadata["payload_io"] == name
    assert made.metadata["payload_file"] == f"payload{file_io.suffix}"


@pytest.mark.s3
@pytest.mark.parametrize(("name", "file_io", "payload"), CASES, ids=[case[0] for case in CASES])
def test_roundtrip_on_s3(
    s3_bucket: tuple[str, dict[str, Any]], name: str, file_io: Any, payload: Any
) -> None:
    """Each serializer persists and loads through the loopback S3 server (streams that cannot seek)."""
    url, options = s3_bucket
    Fixed(url, FixedParams(name), payload_io=file_io, storage_options=options).load_generate(
        payload=payload
    )
    again = Fixed(url, FixedParams(name), payload_io=file_io, storage_options=options)
    again.load()
    _same(payload, again.payload)


def _ome(data: bytes | Path) -> dict[str, Any]:
    import tifffile

    source: Any = io.BytesIO(data) if isinstance(data, bytes) else data
    with tifffile.TiffFile(source) as tiff:
        assert tiff.is_ome
        xml = tiff.ome_metadata
        assert xml is not None
        pixels: dict[str, Any] = tifffile.xml2dict(xml)["OME"]["Image"]["Pixels"]
        return pixels


OME_IO = OmeTiffFileIO(
    dims="CZYX",
    channel_names=["dna", "membrane"],
    physical_pixel_sizes={"Z": 0.29, "Y": 0.108, "X": 0.108},
)


def _check_pixels(pixels: dict[str, Any]) -> None:
    assert [channel["Name"] for channel in pixels["Channel"]] == ["dna", "membrane"]
    assert (pixels["SizeC"], pixels["SizeZ"], pixels["SizeY"], pixels["SizeX"]) == (2, 3, 32, 24)
    assert pixels["Type"] == "uint16"
    assert (pixels["PhysicalSizeZ"], pixels["PhysicalSizeY"], pixels["PhysicalSizeX"]) == (
        0.29,
        0.108,
        0.108,
    )
    assert pixels["PhysicalSizeXUnit"] == "µm"


def test_ome_metadata_reads_back_with_tifffile(tmp_path: Path) -> None:
    """The OME-XML of a persisted OME-TIFF names channels, sizes and physical pixel sizes."""
    made = Fixed(tmp_path, FixedParams("ome"), payload_io=OME_IO)
    made.load_generate(payload=_image())
    path = Path(made.artifact_path) / made.payload_file
    _check_pixels(_ome(path))


@pytest.mark.s3
def test_ome_metadata_reads_back_from_s3(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """An OME-TIFF written to S3 from a dask array carries the same OME-XML."""
    import s3fs

    da: Any = importlib.import_module("dask.array")

    url, options = s3_bucket
    image = da.from_array(_image(), chunks=(1, 1, 32, 24))
    made = Fixed(url, FixedParams("ome-dask"), payload_io=OME_IO, storage_options=options)
    made.load_generate(payload=image)
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    data = fs.cat_file(f"{made.artifact_path}/{made.payload_file}")
    _check_pixels(_ome(data))
    again = Fixed(url, FixedParams("ome-dask"), payload_io=OME_IO, storage_options=options)
    assert_same_payload(_image(), again.payload)


def test_ome_tiff_refuses_wrong_dims_and_dtypes() -> None:
    """A wrong number of dimensions or an unsupported dtype names the serializer and a way out."""
    with pytest.raises(
        PayloadSerializationError,
        match=r"OmeTiffFileIO\(dims='CZYX'\) got an array of 3 dimensions.*dims='ZYX'",
    ):
        OME_IO.check(np.zeros((3, 4, 5), dtype=np.uint8))
    with pytest.raises(
        PayloadSerializationError, match=r"cannot store dtype int64.*ZarrFileIO or NpyFileIO"
    ):
        OmeTiffFileIO(dims="YX").check(np.zeros((3, 4), dtype=np.int64))
    with pytest.raises(
        PayloadSerializationError, match="2 channel_names for an array with 3 channels"
    ):
        OME_IO.check(np.zeros((3, 1, 4, 5), dtype=np.uint8))
    with pytest.raises(ValueError, match="dims must be distinct letters"):
        OmeTiffFileIO(dims="XYZ")


def test_png_refuses_what_it_cannot_store() -> None:
    """Floats or stacks in a PNG are refused with the shapes and dtypes it stores."""
    with pytest.raises(
        PayloadSerializationError, match=r"PngFileIO cannot store a float32 array.*OmeTiffFileIO"
    ):
        PngFileIO().check(np.zeros((4, 4), dtype=np.float32))
    with pytest.raises(PayloadSerializationError, match=r"shape \(2, 4, 4, 4\)"):
        PngFileIO().check(np.zeros((2, 4, 4, 4), dtype=np.uint8))


def test_jpeg_is_close_and_extensions_choose_the_format() -> None:
    """JPEG loads close to what was written; image_file_io picks the FileIO by extension."""
    from persistable.testing import roundtrip

    image = np.full((16, 16), 120, dtype=np.uint8)
    back = roundtrip(JpegFileIO(), image)
    assert back.shape == image.shape
    assert np.abs(back.astype(int) - image).max() <= 2
    assert isinstance(image_file_io(".PNG"), PngFileIO)
    assert isinstance(image_file_io("jpeg"), JpegFileIO)
    with pytest.raises(ValueError, match=r"No image FileIO for the extension '\.gif'"):
        image_file_io(".gif")


def test_csv_and_hdf5_refuse_types_they_would_change() -> None:
    """CsvFileIO refuses datetime columns and Hdf5FileIO str arrays, each naming the alternative."""
    frame = pd.DataFrame({"when": pd.to_datetime(["2026-01-01"])})
    with pytest.raises(PayloadSerializationError, match="ParquetFileIO"):
        CsvFileIO().check(frame)
    with pytest.raises(PayloadSerializationError, match="NpyFileIO or NpzFileIO"):
        Hdf5FileIO().check(np.array(["a", "b"]))
    with pytest.raises(PayloadSerializationError, match="str column names"):
        ParquetFileIO().check(pd.DataFrame({1: [1]}))


def test_hdf5_writes_a_dask_array() -> None:
    """A dask array is stored block by block and loads as the same numpy array."""
    from persistable.testing import roundtrip

    da: Any = importlib.import_module("dask.array")

    values = np.arange(60, dtype=np.float32).reshape(6, 10)
    assert_same_payload(values, roundtrip(Hdf5FileIO(), da.from_array(values, chunks=(2, 5))))


def test_missing_library_gives_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without tifffile, OmeTiffFileIO says which extra to install."""
    import sys

    from persistable.exceptions import MissingDependencyError

    monkeypatch.setitem(sys.modules, "tifffile", None)
    with pytest.raises(MissingDependencyError, match=r"pip install 'persistable\[tiff\]'"):
        OmeTiffFileIO(dims="YX").save(np.zeros((2, 2), np.uint8), io.BytesIO())


def test_ome_tiff_without_dims_follows_the_array_and_the_file(tmp_path: Path) -> None:
    """OmeTiffFileIO() (as the registry builds it) writes TCZYX's last dims and loads what the file says."""
    from persistable.io import file_io_for

    image = _image()
    made = Fixed(tmp_path, FixedParams("nodims"), payload_io=OmeTiffFileIO())
    made.load_generate(payload=image)
    assert _ome(Path(made.artifact_path) / made.payload_file)["DimensionOrder"] == "XYZCT"
    loaded = file_io_for("ome-tiff").load_path(Path(made.artifact_path) / made.payload_file)
    assert_same_payload(image, loaded)
    with pytest.raises(PayloadSerializationError, match="holds 2 to 5"):
        OmeTiffFileIO().check(np.zeros(3, dtype=np.uint8))
