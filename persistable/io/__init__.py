"""FileIOs: the contract and the built-in serializers (pickle is the default)."""

from persistable.io._base import FileIO, PayloadT
from persistable.io._builtin import (
    BytesFileIO,
    JsonFileIO,
    NpyFileIO,
    NpzFileIO,
    PickleFileIO,
    TextFileIO,
)

__all__ = [
    "BytesFileIO",
    "FileIO",
    "JsonFileIO",
    "NpyFileIO",
    "NpzFileIO",
    "PayloadT",
    "PickleFileIO",
    "TextFileIO",
]
