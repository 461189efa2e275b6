"""Per-key generation locks on local stores: an OS lock on a lock file, plus who holds it.

The lock is ``fcntl.flock`` on ``<root>/.persistable/locks/<payload_name>/<key>.lock``
(on Windows, :mod:`filelock` with a ``<key>.holder.json`` beside it). The kernel drops
it when the holding process dies, even by SIGKILL, so a lock file left behind by a
crashed worker never blocks anyone: the file is only a name to lock, not the lock
itself. The holder writes its record (host, pid, since) into the locked file, so that
a waiter that times out can say whom it waited for. ``flock`` is used directly rather
than through filelock: it costs one open and one system call per acquire, which
matters when thousands of small artifacts are generated.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persistable._ids import hostname, random_hex
from persistable.exceptions import LockTimeoutError
from persistable.store._base import INTERNAL_DIR

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from persistable.store._local import LocalStore

__all__ = ["describe_holder", "holder_record", "local_lock", "pid_alive"]

logger = logging.getLogger(__name__)

#: Identifies this process in lock and lease records (unique even across pid reuse).
PROCESS_ID = random_hex()


def holder_record() -> dict[str, Any]:
    """Who is taking a lock now: owner id, host, pid and the UTC time."""
    return {
        "owner": PROCESS_ID,
        "host": hostname(),
        "pid": os.getpid(),
        "since": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    }


def describe_holder(record: dict[str, Any] | None) -> str:
    """``"host 'h', pid 12, since 2026-...Z"`` for messages, or a phrase when unknown."""
    if not record:
        return "an unknown holder (no holder record)"
    return f"host {record.get('host')!r}, pid {record.get('pid')}, since {record.get('since')} UTC"


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid runs on this host (True when it cannot be told)."""
    if pid <= 0:
        return False
    if os.name == "nt":  # os.kill(pid, 0) would terminate the process on Windows
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True  # exists but belongs to another user, or no way to tell: assume alive
    return True


def _read_holder(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


@contextlib.contextmanager
def local_lock(
    store: LocalStore, payload_name: str, key: str, timeout: float | None
) -> Iterator[None]:
    """Hold the lock of one key while the block runs; other processes asking for it wait.

    Parameters
    ----------
    store
        The local store.
    payload_name, key
        The artifact the lock is for (never a store-wide lock).
    timeout
        Seconds to wait, None to wait as long as the holder works.

    Raises
    ------
    LockTimeoutError
        The lock was not free within ``timeout``; the message names the holder.
    """
    folder = store.root / INTERNAL_DIR / "locks" / payload_name
    if sys.platform == "win32":  # pragma: no cover
        with _filelock_lock(store, folder, payload_name, key, timeout):
            yield
        return
    path = folder / f"{key}.lock"
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except FileNotFoundError:
        folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, timeout, lambda: _timeout_error(store, payload_name, key, timeout, fd))
        try:
            # Informational only: the kernel's lock is what excludes. The record lives in
            # the locked file itself, so it costs no extra file; a killed holder's record
            # is overwritten by the next holder.
            record = json.dumps(holder_record()).encode("utf-8")
            os.ftruncate(fd, 0)
            os.pwrite(fd, record, 0)
            logger.debug("Locked %s key %s in %s", payload_name, key, store.url)
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            logger.debug("Unlocked %s key %s in %s", payload_name, key, store.url)
    finally:
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
    store: LocalStore, payload_name: str, key: str, timeout: float | None, fd: int
) -> LockTimeoutError:
    try:
        record: Any = json.loads(os.pread(fd, 4096, 0).decode("utf-8"))
    except (OSError, ValueError):
        record = None
    return LockTimeoutError(
        f"Waited {timeout} s for the lock of {payload_name!r} key {key} in {store.url!r}, "
        f"held by {describe_holder(record if isinstance(record, dict) else None)}; raise the "
        "timeout, or check that worker (the lock is freed as soon as its process ends)."
    )


@contextlib.contextmanager
def _filelock_lock(
    store: LocalStore, folder: Path, payload_name: str, key: str, timeout: float | None
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
            f"Waited {timeout} s for the lock of {payload_name!r} key {key} in {store.url!r}, "
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
