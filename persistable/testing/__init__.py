"""Reusable test suites, so every FileIO and Store implementation is tested the same way."""

from persistable.testing._fileio import FileIOTests, assert_same_payload, roundtrip, roundtrip_path
from persistable.testing._folder import FolderFileIOTests
from persistable.testing._s3server import moto_server
from persistable.testing._store import StoreTests

__all__ = [
    "FileIOTests",
    "FolderFileIOTests",
    "StoreTests",
    "assert_same_payload",
    "moto_server",
    "roundtrip",
    "roundtrip_path",
]
