"""Per-key generation locks on local stores: an OS lock on a lock file, plus who holds it.

The lock is ``fcntl.flock`` on ``<root>/.persistable/locks/<payload_name>/<key>.lock``
(on Windows, :mod:`filelock` with a ``<key>.holder.json`` beside it). The kernel drops
it when the holding process dies, even by SIGKILL, so a lock file left behind by a
crashed worker never blocks anyone: the file is only a name to lock, not the lock
itself. The holder writes its record (host, pid, since) into the locked file, so that
a waiter that times out can say whom it waited for. ``flock`` is used directly rather
than through filelock: it costs one open and one system call per acquire, which
matters when thousands of small artifacts are generated.

Lock files do not accumulate: the holder unlinks its file before unlocking it. A
waiter that had opened the same file then holds a lock on a name that no longer
exists, so after every acquire it checks that the path still names the inode it
locked, and starts again otherwise (the usual flock-and-unlink protocol). Files are
created with mode 0666 less the umask, so a group-shared folder (``umask 002``)
gives every member of the group the right to lock them.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from persistable._ids import random_hex
from persistable.exceptions import LockTimeoutError
from persistable.store._base import INTERNAL_DIR
from persistable.store._holders import describe_holder, holder_record
from persistable.store._shared import access_denied

if sys.platform != "win32":
    import fcntl

__all__ = ["local_lock"]

logger = logging.getLogger(__name__)


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@contextlib.contextmanager
def local_lock(
    root: str, url: str, payload_name: str, key: str, timeout: float | None
) -> Iterator[None]:
    """Hold the lock of one key while the block runs; other processes asking for it wait.

    Parameters
    ----------
    root
        The local store's folder.
    url
        The store's location, for messages.
    payload_name, key
        The artifact the lock is for (never a store-wide lock).
    timeout
        Seconds to wait, None to wait as long as the holder works.

    Raises
    ------
    LockTimeoutError
        The lock was not free within ``timeout``; the message names the holder.
    StoreAccessDeniedError
        The lock file or its folder cannot be created or opened by this user.
    """
    if sys.platform == "win32":  # pragma: no cover
        folder = Path(root) / INTERNAL_DIR / "locks" / payload_name
        with _filelock_lock(url, folder, payload_name, key, timeout):
            yield
        return
    # String paths: a Path per lock costs more than the system calls here.
    folder_name = os.path.join(root, INTERNAL_DIR, "locks", payload_name)
    path = os.path.join(folder_name, f"{key}.lock")
    deadline = None if timeout is None else time.monotonic() + timeout
    fd, size = _acquire_current(path, folder_name, deadline, payload_name, key, url, timeout)
    try:
        # Informational only: the kernel's lock is what excludes. The record lives in
        # the locked file itself, so it costs no extra file. Written, then cut to its
        # length when the file held more (a holder killed before it removed the file):
        # a truncation to zero makes ext4 flush the file when it is closed
        # (auto_da_alloc), which cost ~2 ms per lock, most of a small first run.
        record = json.dumps(holder_record()).encode("utf-8")
        os.pwrite(fd, record, 0)
        if size > len(record):
            os.ftruncate(fd, len(record))
        logger.debug("Locked %s key %s in %s", payload_name, key, url)
        yield
    finally:
        # Unlink while still holding the lock: a waiter that locks the old inode sees
        # that the name is gone and opens a new file.
        with contextlib.suppress(OSError):
            os.unlink(path)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
        logger.debug("Unlocked %s key %s in %s", payload_name, key, url)


def _open(path: str, folder: str) -> int:
    try:
        try:
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except FileNotFoundError:
            os.makedirs(folder, exist_ok=True)
            return os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except PermissionError as error:
        raise access_denied(Path(path), "create or open the lock file", error) from error


def _acquire_current(
    path: str,
    folder: str,
    deadline: float | None,
    payload_name: str,
    key: str,
    url: str,
    timeout: float | None,
) -> tuple[int, int]:
    """Open and lock the file that ``path`` names now; returns its descriptor and size."""
    while True:
        fd = _open(path, folder)
        try:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            _acquire(
                fd, left, functools.partial(_timeout_error, url, payload_name, key, timeout, fd)
            )
            try:
                current = os.stat(path)
            except FileNotFoundError:
                current = None
            locked = os.fstat(fd)
            if current is not None and (current.st_ino, current.st_dev) == (
                locked.st_ino,
                locked.st_dev,
            ):
                return fd, locked.st_size
            # The previous holder unlinked this file: lock the one the name has now.
            fcntl.flock(fd, fcntl.LOCK_UN)
        except BaseException:
            os.close(fd)
            raise
        os.close(fd)


def _acquire(fd: int, timeout: float | None, on_timeout: Callable[[], Exception]) -> None:
    if timeout is None:
        fcntl.flock(fd, fcntl.LOCK_EX)
        return
    deadline = time.monotonic() + timeout
    pause = 0.005
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            left = deadline - time.monotonic()
            if left <= 0:
                raise on_timeout() from None
            time.sleep(min(pause, left))
            pause = min(pause * 2, 0.05)


def _timeout_error(
    url: str, payload_name: str, key: str, timeout: float | None, fd: int
) -> LockTimeoutError:
    try:
        record: Any = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        record = None
    return LockTimeoutError(
        f"Waited {timeout} s for the lock of {payload_name!r} key {key} in {url!r}, "
        f"held by {describe_holder(record if isinstance(record, dict) else None)}; raise the "
        "timeout, or check that worker (the lock is freed as soon as its process ends)."
    )


@contextlib.contextmanager
def _filelock_lock(
    url: str, folder: Path, payload_name: str, key: str, timeout: float | None
) -> Iterator[None]:  # pragma: no cover - Windows
    import filelock

    path = folder / f"{key}.lock"
    holder_path = folder / f"{key}.holder.json"
    folder.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire(poll_interval=0.02)
    except filelock.Timeout as error:
        raise LockTimeoutError(
            f"Waited {timeout} s for the lock of {payload_name!r} key {key} in {url!r}, "
            f"held by {describe_holder(_read_holder(holder_path))}; raise the timeout, or check "
            "that worker (the lock is freed as soon as its process ends)."
        ) from error
    try:
        tmp = folder / f"{key}.holder.{random_hex()}.tmp"
        tmp.write_text(json.dumps(holder_record()), "utf-8")
        os.replace(tmp, holder_path)
        yield
    finally:
        lock.release()
