"""Per-key generation locks: a lock file on local stores."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

import filelock

from persistable.exceptions import LockTimeoutError
from persistable.store._base import INTERNAL_DIR

if TYPE_CHECKING:
    from persistable.store._local import LocalStore

__all__ = ["local_lock"]


@contextlib.contextmanager
def local_lock(
    store: LocalStore, payload_name: str, key: str, timeout: float | None
) -> Iterator[None]:
    """Hold the lock file of one key; other processes asking for it wait."""
    path = store.root / INTERNAL_DIR / "locks" / payload_name / f"{key}.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = filelock.FileLock(str(path), timeout=-1 if timeout is None else timeout)
    try:
        lock.acquire()
    except filelock.Timeout as error:
        raise LockTimeoutError(
            f"Waited {timeout} s for another worker generating {payload_name!r} key {key} "
            f"(lock {str(path)!r}); raise the timeout or check that worker."
        ) from error
    try:
        yield
    finally:
        lock.release()
