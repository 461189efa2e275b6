"""Who holds a lock, a lease or a claim: the holder record, and whether its process still runs.

Shared by the local locks, the object-store leases and the commit claims, and by the
staging clean-up, so that "a dead process on this host" means the same everywhere.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator
from typing import Any

from persistable._ids import hostname, process_id, random_hex

__all__ = [
    "PROCESS_ID",
    "describe_holder",
    "held_here",
    "holder_is_dead",
    "holder_record",
    "pid_alive",
]

#: Identifies this process in lock and lease records (unique even across pid reuse).
PROCESS_ID = random_hex()


def holder_record() -> dict[str, Any]:
    """Who is taking a lock now: owner id, host, pid and the UTC time."""
    import datetime as _dt  # here: `import persistable` does not import datetime

    return {
        "owner": PROCESS_ID,
        "host": hostname(),
        "pid": process_id(),
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


def holder_is_dead(record: dict[str, Any]) -> bool:
    """Whether the record names a process of this host that no longer runs."""
    pid = record.get("pid")
    return record.get("host") == hostname() and isinstance(pid, int) and not pid_alive(pid)


_held = threading.local()


@contextlib.contextmanager
def held_here(token: tuple[str, str, str]) -> Iterator[bool]:
    """Yield True when this thread already holds the lock ``token`` (store, name, key).

    Makes the stores' per-key locks re-entrant within a thread: code that holds a key's
    lock and then calls ``generate()`` (which takes it to replace the artifact) must
    not wait for itself.
    """
    held: set[tuple[str, str, str]] = _held.__dict__.setdefault("tokens", set())
    if token in held:
        yield True
        return
    held.add(token)
    try:
        yield False
    finally:
        held.discard(token)
