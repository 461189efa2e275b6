"""A ``Cache`` hit on a local store in a few system calls, with the payload's checksum checked.

The general load path (:class:`~persistable.artifact.Artifact` behind ``Persistable.load``)
costs several times an unpickle for a sample of a megabyte. A hit here does what that
path does for one committed pickle artifact and nothing else:

* ``metadata.json`` is parsed once per process and reused while the file's identity
  (device, inode, size, mtime and ctime in ns) is unchanged; a committed
  ``metadata.json`` is never rewritten in place, a replacement is a new file. The
  record reused is the one checked on first read (scheme, key, payload name, writing
  class and FileIO, the payload's size and checksum).
* the payload is unpickled from the open file while every byte read is hashed, and
  the rest of the file is read and hashed after it: the sample is returned only when
  size and xxh3-128 match ``metadata.json``, so the bytes unpickled are the bytes checked.

Whatever is unusual (another FileIO or class, a folder payload, a replaced artifact, a
size or checksum that differs, an unpickling error) returns :data:`FULL_PATH`: the
caller then takes the general path, which classifies the problem, warns, quarantines
and regenerates as for any artifact.
"""

from __future__ import annotations

import io
import json
import os
import pickle
from typing import Any, Final

import xxhash

from persistable._artifact import FILES_FOLDER_SCHEME, is_plain_file_name
from persistable._hashing import BULK_ALGORITHM
from persistable.io import FileIO, PickleFileIO
from persistable.store import LocalStore, Store
from persistable.store._base import METADATA_FILE

__all__ = ["FULL_PATH", "MISS", "load_local_hit"]

#: The artifact is not committed (no ``metadata.json``).
MISS: Final = object()
#: The fast path does not decide: load through the general path.
FULL_PATH: Final = object()

#: The class every sample artifact is written by (checked in the record).
_WRITER = "persistable.samples._run.SampleArtifact"
#: Records kept per process; past this the memo starts again (a record is ~1 KiB).
_MEMO_LIMIT = 65536
#: Read size of the hashing reader's buffer (big buffers in the pickle bypass it).
_BUFFER = 1 << 14

_Signature = tuple[int, int, int, int, int]
#: metadata.json path -> (its signature, (payload path, size, checksum)).
_records: dict[str, tuple[_Signature, tuple[str, int, str]]] = {}
#: (store root, payload name) -> the checked folder of that payload name.
_prefixes: dict[tuple[str, str], str] = {}


class _HashingFile(io.RawIOBase):
    """A raw file whose every byte read lands in the destination buffer and in a hasher."""

    def __init__(self, raw: io.FileIO) -> None:
        super().__init__()
        self._raw = raw
        self._hash = xxhash.xxh3_128()
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        count = self._raw.readinto(buffer) or 0
        if count:
            view = memoryview(buffer)
            self._hash.update(view[:count] if count < view.nbytes else view)
            self.size += count
        return count

    def drain(self) -> None:
        """Read and hash the rest of the file."""
        while chunk := self._raw.read(_BUFFER):
            self._hash.update(chunk)
            self.size += len(chunk)

    def hexdigest(self) -> str:
        return str(self._hash.hexdigest())


def _record(
    metadata_path: str, signature: _Signature, folder: str, payload_name: str, key: str
) -> tuple[str, int, str] | None:
    """(payload path, size, checksum) from ``metadata.json``, or None when the fast path does not apply."""
    try:
        with open(metadata_path, "rb") as stream:
            metadata = json.loads(stream.read())
    except (OSError, ValueError):
        return None
    if not isinstance(metadata, dict):
        return None
    code = metadata.get("code")
    name = metadata.get("payload_file")
    files = metadata.get("files")
    scheme = metadata.get("metadata_scheme")
    if (
        not isinstance(scheme, int)
        or scheme > FILES_FOLDER_SCHEME
        or metadata.get("files_folder") is not None
        or metadata.get("key") != key
        or metadata.get("payload_name") != payload_name
        or metadata.get("payload_io") != PickleFileIO.name
        or not isinstance(code, dict)
        or code.get("class") != _WRITER
        or not is_plain_file_name(name)
        or not isinstance(files, dict)
    ):
        return None
    entry = files.get(name)
    if not isinstance(entry, dict):
        return None
    size, checksum = entry.get("size"), entry.get(BULK_ALGORITHM)
    if not isinstance(size, int) or not isinstance(checksum, str):
        return None
    record = (os.path.join(folder, str(name)), size, checksum)
    if len(_records) >= _MEMO_LIMIT:
        _records.clear()
    _records[metadata_path] = (signature, record)
    return record


def load_local_hit(store: Store, payload_name: str, key: str, file_io: FileIO[Any] | None) -> Any:
    """The verified sample of artifact ``payload_name/key``, or :data:`MISS`, or :data:`FULL_PATH`."""
    if (
        type(store) is not LocalStore
        or not store.trusted
        or not (file_io is None or type(file_io) is PickleFileIO)
    ):
        return FULL_PATH
    prefix = _prefixes.get((store._root, payload_name))
    if prefix is None:  # the payload name is checked once (a key is "k1-" and hex digits)
        prefix = _prefixes[(store._root, payload_name)] = store._os_path(payload_name)
    folder = f"{prefix}{os.sep}{key}"
    metadata_path = f"{folder}{os.sep}{METADATA_FILE}"
    try:
        found = os.stat(metadata_path)
    except (FileNotFoundError, NotADirectoryError):
        return MISS
    signature = (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)
    memo = _records.get(metadata_path)
    record = (
        memo[1]
        if memo is not None and memo[0] == signature
        else _record(metadata_path, signature, folder, payload_name, key)
    )
    if record is None:
        return FULL_PATH
    path, size, checksum = record
    try:
        raw = io.FileIO(path, "rb")
    except OSError:
        return FULL_PATH
    with raw:  # (a short or long file fails the size check below)
        hashing = _HashingFile(raw)
        try:
            # The C unpickler's own class lookup: a class it cannot find makes the
            # general path load it, which names the class (or finds a pool worker's
            # script classes under __mp_main__).
            sample = pickle.load(io.BufferedReader(hashing, _BUFFER))  # noqa: S301 - trusted store, as PickleFileIO
            hashing.drain()
        except Exception:
            return FULL_PATH  # the general path tells damage from a missing class
    if hashing.size != size or hashing.hexdigest() != checksum:
        return FULL_PATH
    return sample
