"""What goes into an artifact besides the payload: checksummed writes, ``metadata.json``, ``params.json``."""

from __future__ import annotations

import io
import json
import os
import re
import sys
from collections.abc import Callable
from functools import cache, lru_cache
from pathlib import Path
from typing import IO, Any, cast

from persistable._hashing import BULK_ALGORITHM, KEY_SCHEME, BulkHasher, hash_stream, sha256_hex
from persistable._ids import hostname, process_id
from persistable._parsing import PARSE_LOCK
from persistable._version import __version__
from persistable.exceptions import CorruptArtifactError

__all__ = [
    "FILES_FOLDER_SCHEME",
    "GENERATION_LOG_FIELD",
    "GENERATION_LOG_FILE",
    "INLINE_LOG_LIMIT",
    "METADATA_SCHEME",
    "PARAMS_FILE",
    "HashingReader",
    "check_file",
    "is_artifact_file_path",
    "is_files_folder",
    "naming_files_folder",
    "is_plain_file_name",
    "HashingWriter",
    "build_metadata",
    "bytes_record",
    "code_fingerprint",
    "dump_json",
    "dump_metadata",
    "file_record",
    "stream_record",
]

#: Version of the ``metadata.json`` layout written for an artifact whose files are at
#: their names; readers refuse newer ones than :data:`FILES_FOLDER_SCHEME`.
METADATA_SCHEME = 1
#: The layout of a replaced artifact (every store but memory): its files are in the folder
#: ``files_folder`` names inside the artifact folder (``.r-<id>/payload.pkl``), so the
#: old files stay whole until the new ``metadata.json`` replaces the old one, and no path
#: of the old artifact ever holds a file of the new one.
FILES_FOLDER_SCHEME = 2
_FILES_FOLDER = re.compile(r"\.r-[0-9a-f]{8,64}")
PARAMS_FILE = "params.json"
#: The generation log as a file of its own: a log longer than :data:`INLINE_LOG_LIMIT`
#: (and every log of artifacts committed before logs were kept in ``metadata.json``).
GENERATION_LOG_FILE = "generation.log"
#: The ``metadata.json`` field holding a short generation log (most logs: a few lines).
GENERATION_LOG_FIELD = "generation_log"
#: Bytes up to which the log goes into ``metadata.json``: one file fewer per artifact
#: (a block of disk, three system calls, one object-store put), and ``metadata.json``,
#: read by every load, stays small.
INLINE_LOG_LIMIT = 2048


#: Slice size of big writes: each slice is hashed, then written, while it sits in the
#: CPU's own (L2) cache.
_SLICE = 1 << 18
#: Disk space reserved ahead of a big write (a multiple of _SLICE).
_RESERVE = 1 << 26
#: Writes from this size reserve disk space first (smaller ones may still be spooled in
#: memory, see ``_spool.py``, which asking for the file descriptor would end).
_RESERVE_FROM = 1 << 22
#: fallocate(2) flag: reserve blocks without changing the file's size.
_FALLOC_FL_KEEP_SIZE = 1


@cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """libc's ``fallocate`` on Linux (no emulation, unlike ``posix_fallocate``), else None."""
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return cast("Callable[[int, int, int, int], int]", function)


def _preallocate(sink: IO[bytes], size: int) -> None:
    """Reserve disk space for ``size`` bytes at the position of ``sink`` when it is a local file.

    One reservation instead of one per page makes a big write about a quarter faster on
    ext4 (``numpy.ndarray.tofile`` does the same). Only a hint: failures are ignored,
    and the file's size does not change.
    """
    fallocate = _fallocate()
    if fallocate is None:
        return
    try:
        descriptor = sink.fileno()
        offset = sink.tell()
    except (OSError, ValueError):  # not a file (io.UnsupportedOperation is both), or closed
        return
    fallocate(descriptor, _FALLOC_FL_KEEP_SIZE, offset, size)


def _first_slice_end(sink: IO[bytes], reserve: bool, size: int) -> int:
    """Where the first slice of a big write into ``sink`` ends, reserving disk space first with ``reserve``.

    The slices after it start at multiples of :data:`_SLICE` in the file, so no two
    writes share a page (an ``.npy`` header of 128 bytes would otherwise shift every
    slice off the page boundaries, a third more kernel time on ext4).
    """
    if reserve:  # first: the descriptor ends a spooled payload's buffering
        _preallocate(sink, min(_RESERVE, size))
    try:
        offset = sink.tell()
    except (OSError, ValueError):  # not seekable (io.UnsupportedOperation is both), or closed
        return _SLICE
    return -offset % _SLICE or _SLICE


class DiscardingWriter(io.RawIOBase):
    """A write-only stream that keeps nothing (a hashing writer in front of it, or a lost race)."""

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return memoryview(data).nbytes


class HashingWriter(io.RawIOBase):
    """A write-only stream that counts and hashes every byte it passes on (no extra copy)."""

    def __init__(self, sink: IO[bytes]) -> None:
        super().__init__()
        self._sink = sink
        self.hasher = BulkHasher()
        self._failed = False

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        size = view.nbytes
        try:
            if size <= _SLICE or not view.c_contiguous:
                self.hasher.update(view)
                self._sink.write(view)
                return size
            # A big buffer is hashed and written slice by slice, each slice hashed first:
            # the hash pulls it from RAM into this CPU's cache, where the write's copy
            # into the page cache then reads it. RAM is read once, and the copy from the
            # cache costs less than from RAM: the checksum costs next to nothing in wall
            # or CPU time, without needing a second CPU (a hashing thread beside the
            # writes, or a hash after each write, both cost more: docs/benchmarks.md).
            view = view.cast("B")
            reserve = size >= _RESERVE_FROM
            start, end = 0, min(size, _first_slice_end(self._sink, reserve, size))
            reserved = _RESERVE if reserve else size
            while start < size:
                if start >= reserved:
                    # Reserved a window ahead, never the whole buffer: a writer killed half
                    # way leaves at most one window reserved beyond what it wrote.
                    _preallocate(self._sink, min(_RESERVE, size - start))
                    reserved = start + _RESERVE
                piece = view[start:end]
                self.hasher.update(piece)
                self._sink.write(piece)
                start, end = end, min(size, end + _SLICE)
        except BaseException:
            # The hasher may hold bytes the sink never got: no record from now on.
            self._failed = True
            raise
        return size

    def flush(self) -> None:
        if not self._sink.closed:
            self._sink.flush()

    def close(self) -> None:
        if not self.closed:
            try:
                super().close()
            finally:
                self._sink.close()

    @property
    def record(self) -> dict[str, Any]:
        """Size and checksum of what was written, as stored in ``metadata.json``.

        Raises :class:`OSError` after a write failed: what the sink holds is unknown.
        """
        if self._failed:
            raise OSError(
                "A write through this HashingWriter failed: the bytes written are unknown, "
                "so there is no checksum to record."
            )
        return {"size": self.hasher.size, BULK_ALGORITHM: self.hasher.hexdigest()}


class HashingReader(io.RawIOBase):
    """A read-only stream that hashes every byte read through it (for downloads).

    Call :meth:`finish` after the reader is done: it reads what is left and returns
    the size and checksum of the whole file.
    """

    def __init__(self, source: IO[bytes]) -> None:
        super().__init__()
        self._source = source
        self.hasher = BulkHasher()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        data = self._source.read(len(view))
        count = len(data)
        view[:count] = data
        self.hasher.update(view[:count])
        return count

    def finish(self) -> BulkHasher:
        """Drain the rest of the source; the hasher then holds the whole file."""
        return hash_stream(self._source, self.hasher)


#: Staging files from this size on are hashed through a memory map.
_MAP_FROM = 1 << 20


def file_record(path: Path) -> dict[str, Any]:
    """Size and checksum of a staging file this process has just written, as stored in ``metadata.json``.

    A large file is hashed through a read-only memory map: xxh3 reads the page cache in
    place, about three times faster than reading it back into buffers. Only for files
    no other process writes (a file truncated while it is mapped would crash the reader),
    which is what a staging file is.
    """
    with path.open("rb") as stream:
        return stream_record(stream)


def stream_record(stream: IO[bytes]) -> dict[str, Any]:
    """:func:`file_record` of the whole file open in ``stream`` (opened, not read yet)."""
    import mmap

    size = os.fstat(stream.fileno()).st_size
    if size >= _MAP_FROM:
        with (
            mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) as mapped,
            memoryview(mapped) as view,
        ):
            hasher = BulkHasher()
            hasher.update(view)
    else:
        hasher = hash_stream(stream)
    return {"size": hasher.size, BULK_ALGORITHM: hasher.hexdigest()}


def is_plain_file_name(name: object) -> bool:
    """Whether a file name read from ``metadata.json`` names one file inside its artifact folder."""
    return (
        isinstance(name, str)
        and bool(name)
        and "/" not in name
        and "\\" not in name
        and not name.startswith(".")
    )


def is_files_folder(name: object) -> bool:
    """Whether ``files_folder`` read from ``metadata.json`` is a folder name a replace makes."""
    return isinstance(name, str) and _FILES_FOLDER.fullmatch(name) is not None


def naming_files_folder(metadata: bytes, folder: str) -> bytes:
    """``metadata`` recording that the artifact's files are in ``folder`` inside its folder."""
    record = json.loads(metadata)
    record["files_folder"] = folder
    record["metadata_scheme"] = FILES_FOLDER_SCHEME
    return dump_json(record)


def is_artifact_file_path(name: object) -> bool:
    """Whether a path read from ``metadata.json`` names a file inside its artifact folder.

    Plain names, or ``/``-separated paths of plain names for the files of a folder
    payload (``payload.zarr/c/0/0``): never absolute, never ``..`` or hidden parts.
    """
    return isinstance(name, str) and all(is_plain_file_name(part) for part in name.split("/"))


def check_file(
    where: str,
    hasher: BulkHasher,
    record: Any,
    consequence: str = "the file was changed after it was committed",
) -> None:
    """Raise :class:`CorruptArtifactError` unless ``hasher`` matches the ``metadata.json`` record."""
    if not isinstance(record, dict):
        raise CorruptArtifactError(f"metadata.json lists no size and checksum for {where}.")
    expected = record.get(BULK_ALGORITHM)
    if hasher.size != record.get("size") or hasher.hexdigest() != expected:
        raise CorruptArtifactError(
            f"{where} has {BULK_ALGORITHM} {hasher.hexdigest()} and {hasher.size} bytes, "
            f"metadata.json says {expected} and {record.get('size')}; {consequence}."
        )


def dump_metadata(metadata: dict[str, Any]) -> bytes:
    """``metadata.json`` bytes: sorted keys, one item per line, in one call of the C encoder.

    Still plain JSON, readable line by line (``grep``, ``diff``); ``indent`` would make
    :mod:`json` fall back to its pure-Python encoder, about a third of the CPU time of
    committing a small artifact.
    """
    text = json.dumps(metadata, sort_keys=True, ensure_ascii=False, separators=(",\n", ": "))
    return (text + "\n").encode("utf-8", "backslashreplace")


def bytes_record(data: bytes) -> dict[str, Any]:
    """Size and checksum of ``data``, as stored in ``metadata.json``."""
    hasher = BulkHasher()
    hasher.update(data)
    return {"size": hasher.size, BULK_ALGORITHM: hasher.hexdigest()}


def dump_json(tree: Any) -> bytes:
    """Indented, sorted, human-readable JSON bytes (``params.json``, ``metadata.json``)."""
    text = json.dumps(tree, indent=2, sort_keys=True, ensure_ascii=False) + "\n"
    # A lone surrogate can only sit inside a JSON string, where "\\udcff" is its exact escape.
    return text.encode("utf-8", "backslashreplace")


@cache
def code_fingerprint(cls: type) -> str | None:
    """SHA-256 of the class's source code, or None when it has none (REPL, compiled)."""
    import inspect  # ~10 ms to import, only needed once a class is persisted

    # getsource parses the module with ast.parse, which CPython 3.11 does not support in
    # two threads at once ("AST constructor recursion depth mismatch"): one at a time.
    with PARSE_LOCK:  # shared with the code fingerprint's parses
        try:
            source = inspect.getsource(cls)
        except (OSError, TypeError, SyntaxError, SystemError):
            return None  # provenance is best effort and must never fail a generation
    return sha256_hex(source.encode("utf-8"))


def _numpy_version() -> str | None:
    """numpy's version, without importing numpy when no one has yet (it takes ~100 ms)."""
    numpy = sys.modules.get("numpy")
    if numpy is not None:
        return str(numpy.__version__)
    from importlib import metadata

    try:
        return metadata.version("numpy")
    except metadata.PackageNotFoundError:
        return None


@lru_cache(maxsize=1)
def _environment() -> dict[str, Any]:
    # Imported here, once per process: `import persistable` stays fast (docs/benchmarks.md).
    import getpass
    import platform

    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no passwd entry in some containers
        user = str(os.getuid()) if hasattr(os, "getuid") else "unknown"
    return {
        "host": hostname(),
        "user": user,
        "platform": platform.platform(),
        "versions": {
            "python": platform.python_version(),
            "persistable": __version__,
            "numpy": _numpy_version(),
        },
    }


def build_metadata(
    *,
    key: str,
    payload_name: str,
    version: Any,
    persistable_class: type,
    payload_io: str,
    payload_file: str,
    dependencies: dict[str, str],
    files: dict[str, dict[str, Any]],
    duration_s: float | None,
) -> dict[str, Any]:
    """The provenance record of one artifact; written last, as its commit marker."""
    import datetime as _dt  # here, not at the top: `import persistable` stays fast

    environment = _environment()
    return {
        "metadata_scheme": METADATA_SCHEME,
        "key_scheme": KEY_SCHEME,
        "key": key,
        "payload_name": payload_name,
        "version": version,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="milliseconds"),
        "generation_duration_s": duration_s,
        "host": environment["host"],
        "user": environment["user"],
        "pid": process_id(),
        "platform": environment["platform"],
        "versions": environment["versions"],
        "python_executable": sys.executable,
        "code": {
            "class": f"{persistable_class.__module__}.{persistable_class.__qualname__}",
            "source_sha256": code_fingerprint(persistable_class),
        },
        "dependencies": dependencies,
        "payload_io": payload_io,
        "payload_file": payload_file,
        "checksum_algorithm": BULK_ALGORITHM,
        "files": files,
    }
