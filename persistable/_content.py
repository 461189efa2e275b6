"""``File`` and ``Directory`` params: keyed by what they contain, not by where they are.

A :class:`File` value enters the key as its size and xxh3-128 digest; a
:class:`Directory` as the digest of its sorted tree of relative names, sizes and file
digests. The path itself stays out of the key (moving or renaming an input keeps its
key) but is shown in ``params.json`` next to the digest. A plain ``Path`` param keeps
meaning "this path": it is keyed by its spelling.

Digests are remembered per file by (path, size, mtime_ns, ctime_ns, inode) in memory
and in a small SQLite file under the user's cache folder (``PERSISTABLE_CACHE_DIR``
overrides it), so an unchanged input is not read again. A file modified in the last
two seconds is not remembered: a second write within the same timestamp tick could
otherwise go unseen.
"""

from __future__ import annotations

import contextvars
import os
import pathlib
import stat
import sys
import threading
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from persistable._hashing import canonical_json
from persistable.exceptions import InputFileError
from persistable.params import register_content_type, register_encoder

if TYPE_CHECKING:
    import sqlite3

    from typing_extensions import Self

    _PathBase = pathlib.Path
else:
    _PathBase = type(
        pathlib.Path()
    )  # PosixPath or WindowsPath: Path itself is not subclassable before 3.12

__all__ = ["Directory", "File", "content_digest_cache", "display_paths", "file_digest"]

#: Read size: one buffer that stays in the CPU cache while it is hashed (1 MiB hashed
#: a page-cached file faster than 4 MiB or 16 MiB buffers, see docs/benchmarks.md).
_CHUNK = 1 << 20
#: Seconds a file must be unchanged before its digest is remembered.
_RACY_SECONDS = 2.0


class File(_PathBase):
    """A path to an input file whose *content* is part of the key.

    Use it wherever a ``Path`` is used (``open(params.data)``, ``params.data.read_text()``).
    In the key it counts as its size and xxh3-128 digest, so a changed file gives a new
    key and a moved one keeps its key; ``params.json`` shows its path and digest::

        @dataclass
        class FitParams(PersistableParams):
            data: File

        Fit(data_dir, FitParams(data=File("data/raw.csv")))

    A field annotated ``File`` also accepts a ``str`` or ``Path``: it is keyed as a File.

    An fsspec URL (``File("s3://bucket/raw.csv", storage_options={...})``) is keyed by
    the object's size and checksum as its store reports them (the ETag on S3), without
    downloading it; ``str()`` and ``os.fspath()`` give the URL back.
    """

    #: The fsspec URL this File names, or None for a local path.
    url: str | None = None
    #: Passed to fsspec when the File is a URL.
    storage_options: dict[str, Any] | None = None

    def __new__(cls, *args: Any, storage_options: dict[str, Any] | None = None) -> Self:
        url = args[0] if len(args) == 1 and isinstance(args[0], str) and "://" in args[0] else None
        self = super().__new__(cls, *args)
        self.url = url
        self.storage_options = dict(storage_options or {}) if url is not None else None
        return self

    if sys.version_info >= (3, 12):

        def __init__(self, *args: Any, storage_options: dict[str, Any] | None = None) -> None:
            super().__init__(*args)

    def __str__(self) -> str:
        return self.url if self.url is not None else super().__str__()

    def __fspath__(self) -> str:
        return str(self)


class Directory(_PathBase):
    """A path to an input folder keyed by its tree: sorted relative names, sizes and file contents."""


#: Whether encoders add each path next to its digest (for params.json, not for keys).
_display: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "persistable_display_paths", default=False
)


class display_paths:
    """Within this context, encodings of File and Directory values also show their paths."""

    def __enter__(self) -> None:
        self._token = _display.set(True)

    def __exit__(self, *exc_info: object) -> None:
        _display.reset(self._token)


def _cache_root() -> pathlib.Path:
    override = os.environ.get("PERSISTABLE_CACHE_DIR")
    if override:
        return pathlib.Path(override)
    if sys.platform == "win32":
        base = os.environ.get("LOCALAPPDATA") or str(pathlib.Path.home() / "AppData" / "Local")
        return pathlib.Path(base) / "persistable"
    if sys.platform == "darwin":
        return pathlib.Path.home() / "Library" / "Caches" / "persistable"
    base = os.environ.get("XDG_CACHE_HOME") or str(pathlib.Path.home() / ".cache")
    return pathlib.Path(base) / "persistable"


_Signature = tuple[str, int, int, int, int]


class _DigestCache:
    """Digests by file signature, in memory and in a SQLite file shared by the user's processes."""

    def __init__(self) -> None:
        self._memory: dict[_Signature, str] = {}
        self._lock = threading.Lock()
        self._db: sqlite3.Connection | None = None
        self._db_path: pathlib.Path | None = None
        self._db_failed = False

    def _connection(self) -> sqlite3.Connection | None:
        root = _cache_root()
        if self._db is not None and self._db_path == root:
            return self._db
        if self._db_failed and self._db_path == root:
            return None
        import sqlite3  # only when a File or Directory is first hashed

        self._db_path = root
        self._db = None
        try:
            root.mkdir(parents=True, exist_ok=True)
            db = sqlite3.connect(
                root / "content-digests.sqlite", timeout=30, check_same_thread=False
            )
            db.execute(
                "CREATE TABLE IF NOT EXISTS digests (path TEXT, size INTEGER, mtime_ns INTEGER, "
                "ctime_ns INTEGER, inode INTEGER, xxh3_128 TEXT, "
                "PRIMARY KEY (path, size, mtime_ns, ctime_ns, inode))"
            )
            db.commit()
        except (OSError, sqlite3.Error):
            # A read-only or full home folder: digests are then remembered in memory only.
            self._db_failed = True
            return None
        self._db_failed = False
        self._db = db
        return db

    def get(self, signature: _Signature) -> str | None:
        with self._lock:
            hit = self._memory.get(signature)
            if hit is not None:
                return hit
            db = self._connection()
            if db is None:
                return None
            import sqlite3

            try:
                row = db.execute(
                    "SELECT xxh3_128 FROM digests WHERE path=? AND size=? AND mtime_ns=? "
                    "AND ctime_ns=? AND inode=?",
                    signature,
                ).fetchone()
            except sqlite3.Error:
                return None
            if row is None:
                return None
            self._memory[signature] = str(row[0])
            return str(row[0])

    def put(self, signature: _Signature, digest: str) -> None:
        with self._lock:
            self._memory[signature] = digest
            db = self._connection()
            if db is None:
                return
            import sqlite3

            try:
                db.execute(
                    "DELETE FROM digests WHERE path=?", (signature[0],)
                )  # older versions of the file
                db.execute(
                    "INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?, ?, ?)", (*signature, digest)
                )
                db.commit()
            except sqlite3.Error:
                pass  # the cache is an optimisation; hashing again is always correct

    def clear_memory(self) -> None:
        with self._lock:
            self._memory.clear()
            if self._db is not None:
                self._db.close()
            self._db = None
            self._db_path = None
            self._db_failed = False


content_digest_cache = _DigestCache()


def _hash_file(path: str) -> str:
    import xxhash

    hasher = xxhash.xxh3_128()
    buffer = bytearray(_CHUNK)
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as stream:
        while count := stream.readinto(buffer):
            hasher.update(view[:count])
    return str(hasher.hexdigest())


def file_digest(path: str | os.PathLike[str], info: os.stat_result | None = None) -> str:
    """xxh3-128 of a local file's content, remembered while the file is unchanged."""
    absolute = os.path.abspath(os.fspath(path))
    info = os.stat(absolute) if info is None else info
    signature: _Signature = (
        absolute,
        info.st_size,
        info.st_mtime_ns,
        info.st_ctime_ns,
        info.st_ino,
    )
    digest = content_digest_cache.get(signature)
    if digest is not None:
        return digest
    digest = _hash_file(absolute)
    if time.time() - info.st_mtime_ns / 1e9 > _RACY_SECONDS:
        content_digest_cache.put(signature, digest)
    return digest


def _stat(value: pathlib.Path, where: str, kind: str) -> os.stat_result:
    try:
        return os.stat(value)
    except FileNotFoundError:
        raise InputFileError(
            f"{where} is the {kind} {str(value)!r}, which does not exist "
            f"(looked in {os.getcwd()!r}); create it or correct the path."
        ) from None
    except OSError as error:
        raise InputFileError(
            f"{where} is the {kind} {str(value)!r}, which cannot be read "
            f"({type(error).__name__}: {error}); fix its permissions or the path."
        ) from None


def _read_digest(value: pathlib.Path, where: str, info: os.stat_result) -> str:
    try:
        return file_digest(value, info)
    except OSError as error:
        raise InputFileError(
            f"{where} is the file {str(value)!r}, which cannot be read "
            f"({type(error).__name__}: {error}); fix its permissions or the path."
        ) from None


def _encode_url(value: File, path: str) -> Any:
    url = str(value.url)
    try:
        import fsspec
    except ImportError:
        from persistable.exceptions import MissingDependencyError

        raise MissingDependencyError(
            f"{path} is File({url!r}), a URL, which needs fsspec; install it with "
            "pip install 'persistable[fsspec]' (or 'persistable[s3]' for s3:// URLs)."
        ) from None
    try:
        filesystem, inner = fsspec.core.url_to_fs(url, **(value.storage_options or {}))
        info = filesystem.info(inner)
    except FileNotFoundError:
        raise InputFileError(
            f"{path} is the file {url!r}, which does not exist; upload it or correct the URL."
        ) from None
    except Exception as error:
        raise InputFileError(
            f"{path} is the file {url!r}, which cannot be read ({type(error).__name__}: "
            f"{error}); check the URL and the storage_options (credentials, endpoint)."
        ) from None
    if info.get("type") == "directory":
        raise InputFileError(f"{path} is File({url!r}), which is a directory; name one object.")
    checksum = next(
        (
            str(info[name]).strip('"')
            for name in ("ETag", "etag", "md5Hash", "crc32c", "checksum", "sha256", "md5")
            if info.get(name)
        ),
        None,
    )
    if checksum is None:  # a filesystem that reports no checksum: hash the content
        import xxhash

        hasher = xxhash.xxh3_128()
        with filesystem.open(inner, "rb") as stream:
            while chunk := stream.read(_CHUNK):
                hasher.update(chunk)
        checksum = f"xxh3_128:{hasher.hexdigest()}"
    tree: dict[str, Any] = {
        "__type__": "remote_file",
        "size": int(info.get("size") or 0),
        "checksum": checksum,
    }
    if _display.get():
        tree["path"] = url
    return tree


@register_encoder(File)
def _encode_file(value: File, path: str) -> Any:
    if value.url is not None:
        return _encode_url(value, path)
    info = _stat(value, path, "file")
    if stat.S_ISDIR(info.st_mode):
        raise InputFileError(
            f"{path} is File({str(value)!r}), which is a directory; declare the field as a "
            "Directory to key it by its tree of files."
        )
    tree: dict[str, Any] = {
        "__type__": "file",
        "size": info.st_size,
        "xxh3_128": _read_digest(value, path, info),
    }
    if _display.get():
        tree["path"] = value.as_posix()
    return tree


def _walk(root: pathlib.Path, where: str) -> Iterator[tuple[str, pathlib.Path]]:
    """Every file below ``root`` as (relative POSIX name, path), in sorted order."""

    def fail(error: OSError) -> None:
        raise InputFileError(
            f"{where} is the directory {str(root)!r}, part of which cannot be read "
            f"({type(error).__name__}: {error}); fix its permissions."
        )

    entries: list[tuple[str, pathlib.Path]] = []
    # Symlinked folders are followed, as a reader of the tree (glob, rglob) follows them;
    # a link to a folder already listed (an ancestor, or a second link) is not entered again.
    listed: set[tuple[int, int]] = set()

    def entered(folder: str) -> bool:
        try:
            info = os.stat(folder)
        except OSError:
            return True  # os.walk reports it through onerror
        identity = (info.st_dev, info.st_ino)
        if identity in listed:
            return False
        listed.add(identity)
        return True

    entered(os.fspath(root))
    for folder, directories, files in os.walk(root, onerror=fail, followlinks=True):
        directories[:] = sorted(
            name
            for name in directories
            if not os.path.islink(path := os.path.join(folder, name)) or entered(path)
        )
        relative = os.path.relpath(folder, root)
        prefix = "" if relative == "." else pathlib.Path(relative).as_posix() + "/"
        for name in files:
            entries.append((prefix + name, pathlib.Path(folder, name)))
    entries.sort()
    yield from entries


@register_encoder(Directory)
def _encode_directory(value: Directory, path: str) -> Any:
    info = _stat(value, path, "directory")
    if not stat.S_ISDIR(info.st_mode):
        raise InputFileError(
            f"{path} is Directory({str(value)!r}), which is a file, not a directory; declare "
            "the field as a File, or pass the folder that holds it."
        )
    import xxhash

    listing: list[list[Any]] = []
    total = 0
    for name, member in _walk(value, path):
        member_info = _stat(member, f"{path} ({name})", "file")
        listing.append([name, member_info.st_size, _read_digest(member, path, member_info)])
        total += member_info.st_size
    tree: dict[str, Any] = {
        "__type__": "directory",
        "files": len(listing),
        "size": total,
        "xxh3_128": xxhash.xxh3_128_hexdigest(canonical_json(listing)),
    }
    if _display.get():
        tree["path"] = value.as_posix()
    return tree


register_content_type(File)
register_content_type(Directory)
