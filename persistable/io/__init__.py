"""FileIOs: the contract, the built-in serializers (pickle is the default) and the registry by name.

The science serializers (Parquet, CSV, HDF5, OME-TIFF, PNG/JPEG, zarr) live one per module and
import their library on first use, failing with an install hint when it is absent. Every
FileIO is registered by its ``name`` (``_registry.py``), so an artifact loads with the
FileIO its ``metadata.json`` names.

``DictEncodable`` and ``PayloadTypeT`` are here because 1.x code imports them from here.
"""

import importlib
from typing import TYPE_CHECKING, Any

from persistable._v1._encodable import DictEncodable
from persistable.io._base import FileIO, PayloadT, PayloadTypeT
from persistable.io._builtin import (
    BytesFileIO,
    JsonFileIO,
    NpyFileIO,
    NpzFileIO,
    PickleFileIO,
    TextFileIO,
)
from persistable.io._registry import ENTRY_POINT_GROUP, file_io_for, file_io_names, register_file_io

if TYPE_CHECKING:
    from persistable.io._csv import CsvFileIO
    from persistable.io._directory import DirectoryFileIO, FilesPersistable
    from persistable.io._folder import FolderFileIO, FolderLocation
    from persistable.io._hdf5 import Hdf5FileIO
    from persistable.io._image import ImageFileIO, JpegFileIO, PngFileIO, image_file_io
    from persistable.io._parquet import ParquetFileIO
    from persistable.io._tiff import OmeTiffFileIO
    from persistable.io._zarr import ZarrFileIO

#: The science serializers' modules, imported on first attribute access (``import
#: persistable`` stays fast; see docs/benchmarks.md, import time).
_LAZY = {
    "CsvFileIO": "_csv",
    "DirectoryFileIO": "_directory",
    "FilesPersistable": "_directory",
    "FolderFileIO": "_folder",
    "FolderLocation": "_folder",
    "Hdf5FileIO": "_hdf5",
    "ImageFileIO": "_image",
    "JpegFileIO": "_image",
    "PngFileIO": "_image",
    "image_file_io": "_image",
    "ParquetFileIO": "_parquet",
    "OmeTiffFileIO": "_tiff",
    "ZarrFileIO": "_zarr",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "BytesFileIO",
    "CsvFileIO",
    "DictEncodable",
    "DirectoryFileIO",
    "ENTRY_POINT_GROUP",
    "FileIO",
    "FilesPersistable",
    "FolderFileIO",
    "FolderLocation",
    "Hdf5FileIO",
    "ImageFileIO",
    "JpegFileIO",
    "JsonFileIO",
    "NpyFileIO",
    "NpzFileIO",
    "OmeTiffFileIO",
    "ParquetFileIO",
    "PayloadT",
    "PayloadTypeT",
    "PickleFileIO",
    "PngFileIO",
    "TextFileIO",
    "ZarrFileIO",
    "file_io_for",
    "file_io_names",
    "image_file_io",
    "register_file_io",
]
