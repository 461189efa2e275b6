"""A store in a local folder: atomic commit by renaming a staged folder into place (and, to
replace, a ``metadata.json`` over the old one)."""

from __future__ import annotations

import contextlib
import errno
import functools
import logging
import os
import stat
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO

from persistable._artifact import naming_files_folder
from persistable._ids import hostname, process_id, random_hex
from persistable.exceptions import ReadOnlyStoreError, StoreConfigurationError
from persistable.store._base import INTERNAL_DIR, METADATA_FILE, Store, Transaction
from persistable.store._holders import held_here, pid_alive
from persistable.store._shared import access_denied

__all__ = ["LocalStore"]

logger = logging.getLogger(__name__)

_STAGING = f"{INTERNAL_DIR}/staging"
#: Flags of every file this store opens with ``os.open``: bytes as they are (Windows
#: would translate line ends without O_BINARY), not inherited by child processes.
_OPEN_FLAGS = getattr(os, "O_BINARY", 0) | getattr(os, "O_CLOEXEC", 0)


def _rmtree(path: Path, ignore_errors: bool = False) -> None:
    import shutil  # ~4 ms to import; only needed to clean up

    shutil.rmtree(path, ignore_errors=ignore_errors)


class LocalStore(Store):
    """Artifacts in a local directory (created on the first write, never on construction).

    Parameters
    ----------
    root
        The store's folder.
    read_only
        Refuse every write (also detected from file permissions before generating).
    trusted
        Whether pickle payloads of this store may be unpickled (see docs/security.md).
    """

    #: Staging folders of dead processes on this host older than this are removed by
    #: the next writer (seconds; 0: at once); folders of other hosts are never removed
    #: automatically.
    stale_staging_age: float = 0.0

    def __init__(
        self, root: str | os.PathLike[str], *, read_only: bool = False, trusted: bool = True
    ) -> None:
        self.root = Path(root).expanduser().absolute()
        self._root = str(self.root)
        try:
            mode = os.stat(self.root).st_mode  # one stat: every Persistable makes a store
        except (FileNotFoundError, NotADirectoryError):
            mode = stat.S_IFDIR  # created on the first write
        if not stat.S_ISDIR(mode):
            raise StoreConfigurationError(
                f"data_dir {str(self.root)!r} is a file, expected a directory; "
                "pass the folder that should hold the artifacts."
            )
        self.read_only = read_only
        self.trusted = trusted

    @property
    def url(self) -> str:
        return str(self.root)

    def _path(self, path: str) -> Path:
        return Path(self._os_path(path))

    def _os_path(self, path: str) -> str:
        """The checked path as a string: building ``Path`` objects costs more than the I/O here."""
        if not path:
            return str(self.root)
        parts = path.replace("\\", "/").split("/")
        if path.startswith("/") or ":" in parts[0] or "" in parts or "." in parts or ".." in parts:
            raise StoreConfigurationError(
                f"{path!r} is not a plain relative path inside the store {str(self.root)!r}; "
                "store paths are '/'-separated names without '.', '..' or empty parts."
            )
        return os.path.join(self._root, path)

    def local_path(self, path: str) -> Path:
        return self._path(path)

    def exists(self, path: str) -> bool:
        return os.path.isfile(self._os_path(path))

    def open_read(self, path: str) -> IO[bytes]:
        return open(self._os_path(path), "rb")

    def size(self, path: str) -> int:
        return os.stat(self._os_path(path)).st_size

    def read_bytes(self, path: str) -> bytes:
        # Four system calls (open, read, read, close) where open().read() makes nine:
        # every load reads metadata.json whole.
        fd = os.open(self._os_path(path), os.O_RDONLY | _OPEN_FLAGS)
        try:
            chunks = []
            while chunk := os.read(fd, 1 << 16):
                chunks.append(chunk)
        finally:
            os.close(fd)
        return chunks[0] if len(chunks) == 1 else b"".join(chunks)

    def list_dir(self, path: str) -> list[str]:
        try:
            return sorted(entry.name for entry in os.scandir(self._os_path(path)))
        except (FileNotFoundError, NotADirectoryError):
            return []

    def list_keys(self, payload_name: str) -> list[str]:
        # One scandir and one stat of each metadata.json, paths joined as strings: the
        # shared version checks every key's path again and sorts twice, which grew
        # faster than the folder (100,000 keys).
        folder = self._os_path(payload_name)  # refuses names that leave the store
        try:
            entries = os.scandir(folder)
        except (FileNotFoundError, NotADirectoryError):
            return []
        isfile, join = os.path.isfile, os.path.join
        with entries:
            keys = [entry.name for entry in entries if isfile(join(entry.path, METADATA_FILE))]
        keys.sort()
        return keys

    def check_writable(self) -> None:
        super().check_writable()
        if os.access(self.root, os.W_OK | os.X_OK):
            return  # the usual case: one system call
        existing = self.root
        while not existing.exists() and existing != existing.parent:
            existing = existing.parent
        if not os.access(existing, os.W_OK | os.X_OK):
            raise ReadOnlyStoreError(
                f"Cannot write into {str(self.root)!r}: {str(existing)!r} is not writable by this "
                "user; choose a writable data_dir or fix the folder's permissions."
            )

    def begin(self, artifact_dir: str, *, replace: bool = False) -> Transaction:
        self.check_writable()
        self._os_path(artifact_dir)  # refuse paths that leave the store before writing anything
        # One listing of the (short) staging folder per write: leftovers of a writer
        # that died are removed by the next write, not an hour later.
        self.clean_staging()
        try:
            return _LocalTransaction(self, artifact_dir, replace=replace)
        except PermissionError as error:
            raise access_denied(
                self.root / _STAGING, "create a staging folder in", error
            ) from error

    def clean_staging(self, max_age: float | None = None) -> list[str]:
        """Remove staging folders left by dead processes of this host; returns their names.

        A staging folder is named ``<uuid>-<pid>-<host>``. It is removed only when its
        host is this host, its pid no longer runs, and it is older than ``max_age``
        seconds (default :attr:`stale_staging_age`). Folders of other hosts (shared
        network folders) are left alone: their owner may still be writing.
        """
        limit = self.stale_staging_age if max_age is None else max_age
        folder = self.root / _STAGING
        try:
            # A folder's link count is 2 plus its subfolders on most local file systems
            # (1 where it is not counted, e.g. btrfs): 2 means no staging folder to look at.
            if os.stat(folder).st_nlink == 2:
                return []
        except (FileNotFoundError, NotADirectoryError):
            return []
        host = _host_tag()
        removed: list[str] = []
        now = time.time()
        for name in self.list_dir(_STAGING):
            parts = name.split("-", 2)
            if len(parts) != 3 or parts[2] != host or not parts[1].isdigit():
                continue
            if pid_alive(int(parts[1])):
                continue
            try:
                age = now - (folder / name).stat().st_mtime
            except FileNotFoundError:
                continue
            if age >= limit:
                _rmtree(folder / name, ignore_errors=True)
                removed.append(name)
        if removed:
            logger.info("Removed %d stale staging folder(s) in %s", len(removed), self.url)
        return removed

    def move_dir(self, src: str, dst: str) -> None:
        target = self._path(dst)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.rename(self._path(src), target)

    def remove_dir(self, path: str) -> None:
        _rmtree(self._path(path), ignore_errors=True)

    def delete_artifact(self, payload_name: str, key: str) -> bool:
        """Rename the folder into the staging area at once (readers see it go whole), then remove it."""
        self.check_writable()
        folder = self._path(self.artifact_dir(payload_name, key))
        existed = (folder / METADATA_FILE).is_file()
        trash = self.root / _STAGING / f"{random_hex()}-{os.getpid()}-{_host_tag()}"
        try:
            trash.parent.mkdir(parents=True, exist_ok=True)
            os.rename(folder, trash)
        except FileNotFoundError:
            return False
        except PermissionError as error:
            raise access_denied(folder, "delete", error) from error
        _rmtree(trash, ignore_errors=True)
        return existed

    @contextlib.contextmanager
    def lock(self, payload_name: str, key: str, timeout: float | None = None) -> Iterator[None]:
        local_lock = _local_lock()
        self._os_path(self.artifact_dir(payload_name, key))  # names stay inside the store
        with held_here((self.url, payload_name, key)) as again:
            if again:  # this thread holds it already (re-entrant)
                yield
                return
            with local_lock(self._root, self.url, payload_name, key, timeout):
                yield


def remove_all_but(folder: Path, keep: tuple[str, ...]) -> None:
    """Remove every file and folder inside ``folder`` except the names in ``keep``."""
    for entry in os.scandir(folder):
        if entry.name in keep:
            continue
        if entry.is_dir(follow_symlinks=False):
            _rmtree(Path(entry.path), ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(entry.path)


def write_file(path: str, data: bytes | memoryview) -> None:
    """Create the file ``path`` (it must not exist) holding ``data``."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _OPEN_FLAGS, 0o666)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)


@functools.cache
def _local_lock() -> Callable[
    [str, str, str, str, float | None], contextlib.AbstractContextManager[None]
]:
    """The lock function, imported once (an import in ``lock()`` cost a microsecond each time)."""
    from persistable.store._locks import local_lock

    return local_lock


@functools.cache
def _host_tag() -> str:
    return "".join(c if c.isalnum() or c in "._" else "_" for c in hostname())[:64]


class _LocalTransaction(Transaction):
    store: LocalStore

    def __init__(self, store: LocalStore, artifact_dir: str, *, replace: bool = False) -> None:
        super().__init__(store, artifact_dir, replace=replace)
        # uuid-pid-host: lets a later writer tell a dead writer's leftovers (clean_staging).
        self.staging = store.root / _STAGING / f"{random_hex()}-{process_id()}-{_host_tag()}"
        self._staging = os.fspath(self.staging)
        try:
            os.mkdir(self._staging)
        except FileNotFoundError:  # the first write of this store
            self.staging.mkdir(parents=True)
        self._done = False

    def open_write(self, name: str) -> IO[bytes]:
        path = self.staging / name
        if "/" in name:  # a file of a folder payload
            path.parent.mkdir(parents=True, exist_ok=True)
        return path.open("wb")

    def write_bytes(self, name: str, data: bytes) -> None:
        if "/" in name:
            super().write_bytes(name, data)
            return
        # open(..., "wb") also costs an fstat, an ioctl and an lseek: three system
        # calls of six, for each of the small files of every artifact.
        write_file(os.path.join(self._staging, name), data)

    def local_path(self, name: str) -> Path:
        return self.staging / name

    def commit(self, metadata: bytes) -> bool:
        final = self.store.root / self.artifact_dir
        try:
            if self.replace and os.path.isfile(os.path.join(final, METADATA_FILE)):
                self._replace(final, metadata)
                return True
            write_file(os.path.join(self._staging, METADATA_FILE), metadata)
            return self._commit(final, metadata)
        except PermissionError as error:
            self.abort()
            raise access_denied(final.parent, "commit an artifact into", error) from error

    def _commit(self, final: Path, metadata: bytes) -> bool:
        for _ in range(3):
            try:
                os.rename(self.staging, final)
            except FileNotFoundError:
                # The payload's folder does not exist yet (first artifact of this name);
                # creating it only then saves a system call on every other commit.
                final.parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                    raise
                if (final / METADATA_FILE).is_file():
                    if self.replace:
                        os.unlink(os.path.join(self._staging, METADATA_FILE))
                        self._replace(final, metadata)
                        return True
                    self.abort()  # someone committed first: theirs wins
                    return False
                # A folder without metadata.json is not an artifact: set it aside, retry.
                self.store.quarantine_dir(self.artifact_dir)
            else:
                self._done = True
                return True
        self.abort()
        return False

    def _replace(self, final: Path, metadata: bytes) -> None:
        """Replace the committed artifact in ``final`` (the caller holds the key's lock).

        As on object stores, the new files never take a path of the old artifact: the
        staged folder becomes ``final/.r-<id>/``, then its ``metadata.json``, naming that
        folder as ``files_folder``, is renamed over the old one (one atomic rename: the
        commit), and only then are the old files removed. A writer killed before the
        commit leaves the old artifact whole; a reader holding the old artifact's paths
        finds its files, or finds them gone, never a file of the new artifact there.
        """
        folder = f".r-{random_hex()}"
        write_file(
            os.path.join(self._staging, METADATA_FILE), naming_files_folder(metadata, folder)
        )
        os.rename(self.staging, final / folder)
        self._done = True
        os.rename(final / folder / METADATA_FILE, final / METADATA_FILE)
        remove_all_but(final, (METADATA_FILE, folder))

    def abort(self) -> None:
        if not self._done:
            self._done = True
            _rmtree(self.staging, ignore_errors=True)
