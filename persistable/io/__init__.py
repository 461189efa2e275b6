"""FileIOs: the contract and the built-in serializers (pickle is the default).

The science serializers (Parquet, CSV, HDF5, OME-TIFF, PNG/JPEG, zarr) live one per module and
import their library on first use, failing with an install hint when it is absent.

``DictEncodable`` and ``PayloadTypeT`` are here because 1.x code imports them from here.
"""

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
from persistable.io._csv import CsvFileIO
from persistable.io._folder import FolderFileIO, FolderLocation
from persistable.io._hdf5 import Hdf5FileIO
from persistable.io._image import ImageFileIO, JpegFileIO, PngFileIO, image_file_io
from persistable.io._parquet import ParquetFileIO
from persistable.io._tiff import OmeTiffFileIO
from persistable.io._zarr import ZarrFileIO

__all__ = [
    "BytesFileIO",
    "CsvFileIO",
    "DictEncodable",
    "FileIO",
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
    "image_file_io",
]
