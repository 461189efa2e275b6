"""Steps for the tests, in an importable module so worker processes can import them.

Each computation appends a line to the journal file given as the untracked ``journal``
argument (when set), so tests count computations across processes (an environment
variable would not reach the workers of a forkserver started by an earlier test).
"""

from __future__ import annotations

import os
from pathlib import Path

from persistable import step

DATA_DIR = "step-store-replaced-by-the-tests"


def _journal(journal: str, line: str) -> None:
    if journal:
        with Path(journal).open("a") as handle:
            handle.write(f"{line} {os.getpid()}\n")


@step(data_dir=DATA_DIR, untracked=("journal",))
def square(x: int, journal: str = "") -> int:
    """x squared."""
    _journal(journal, f"square {x}")
    return x * x


@step(data_dir=DATA_DIR, untracked=("journal",))
def total(values: list[int], offset: int = 0, journal: str = "") -> int:
    """The sum of the values plus an offset."""
    _journal(journal, f"total {values}")
    return sum(values) + offset
