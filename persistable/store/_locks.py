"""Per-key generation locks on local stores: an OS lock on a lock file, plus who holds it.

The lock is ``fcntl.flock`` (``LockFileEx`` on Windows) through :mod:`filelock` on
``<root>/.persistable/locks/<payload_name>/<key>.lock``. The kernel drops it when
the holding process dies, even by SIGKILL, so a lock file left behind by a crashed
worker never blocks anyone: the file is only a name to lock, not the lock itself.
Beside it, ``<key>.holder.json`` records the holder (host, pid, since) so that a
waiter that times out can say whom it waited for.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import json
import logging
import os
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import filelock

from persistable.exceptions import LockTimeoutError
from persistable.store._base import INTERNAL_DIR

if TYPE_CHECKING:
    from persistable.store._local import LocalStore

__all__ = ["describe_holder", "holder_record", "local_lock", "pid_alive"]

logger = logging.getLogger(__name__)

#: Identifies this process in lock and lease records (unique even across pid reuse).
PROCESS_ID = uuid.uuid4().hex


def holder_record() -> dict[str, Any]:
    """Who is taking a lock now: owner id, host, pid and the UTC time."""
    return {
        "owner": PROCESS_ID,
        "host": socket.gethostname(),
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
        # Informational only: the OS lock above is what excludes; a record left by a
        # killed holder is overwritten by the next one.
        tmp = folder / f"{key}.holder.{uuid.uuid4().hex}.tmp"
        tmp.write_text(json.dumps(holder_record()), "utf-8")
        os.replace(tmp, holder_path)
        logger.debug("Locked %s key %s in %s", payload_name, key, store.url)
        yield
    finally:
        lock.release()
        logger.debug("Unlocked %s key %s in %s", payload_name, key, store.url)
