"""Steps for the tests, in an importable module so worker processes can import them.

Each computation appends a line to the journal file named by ``PERSISTABLE_TEST_JOURNAL``
(when set), so tests count computations across processes.
"""

from __future__ import annotations

import os
from pathlib import Path

from persistable import step

DATA_DIR = "step-store-replaced-by-the-tests"


def _journal(line: str) -> None:
    journal = os.environ.get("PERSISTABLE_TEST_JOURNAL")
    if journal:
        with Path(journal).open("a") as handle:
            handle.write(f"{line} {os.getpid()}\n")


@step(data_dir=DATA_DIR)
def square(x: int) -> int:
    """x squared."""
    _journal(f"square {x}")
    return x * x


@step(data_dir=DATA_DIR)
def total(values: list[int], offset: int = 0) -> int:
    """The sum of the values plus an offset."""
    _journal(f"total {values}")
    return sum(values) + offset
