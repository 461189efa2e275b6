"""Stage functions for the memori tests, importable by worker processes.

Each call writes one file ``<name> <pid>`` into the journal folder given by ``journal``
(when set): a folder, because a ``str`` naming an existing *file* is an input keyed by
its content, so a journal file would change the key of the next call.
"""

from __future__ import annotations

import os
import time
from pathlib import Path


def _note(journal: str, line: str) -> None:
    if journal:
        Path(journal, f"{time.time_ns()}-{os.getpid()}").write_text(f"{line} {os.getpid()}")


def read_journal(journal: str) -> list[str]:
    """The journal's entries, oldest first."""
    return [path.read_text() for path in sorted(Path(journal).iterdir())]


def add_pair(a: int, b: int, journal: str = "", sleep: float = 0.0) -> tuple[int, int]:
    """a + b and a * b."""
    _note(journal, f"add_pair {a} {b}")
    time.sleep(sleep)
    return a + b, a * b


def left(total: int, journal: str = "", sleep: float = 0.0) -> int:
    """One branch: total + 1."""
    _note(journal, "left")
    time.sleep(sleep)
    return total + 1


def right(product: int, journal: str = "", sleep: float = 0.0) -> int:
    """The other branch: product * 10."""
    _note(journal, "right")
    time.sleep(sleep)
    return product * 10


def join(left_value: int, right_value: int, journal: str = "") -> int:
    """Both branches."""
    _note(journal, "join")
    return left_value + right_value
