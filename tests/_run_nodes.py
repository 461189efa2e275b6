"""Persistables for the runner tests, in an importable module so worker processes can unpickle them.

Each generation drops a file into a journal folder (name and pid), so tests count
generations across threads, processes and Dask workers; a node refuses to run
before its dependencies are committed, so a scheduling-order bug fails loudly.
"""

from __future__ import annotations

import os
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from persistable import Persistable, PersistableParams, untracked
from persistable.store import StoreLike


@dataclass
class StepParams(PersistableParams):
    """A value, plus untracked knobs that do not change the key."""

    name: str
    value: int = 0
    journal: str = untracked(default="")
    fail_if_exists: str = untracked(default="")
    sleep: float = untracked(default=0.0)


class Step(Persistable[int, StepParams]):
    """Its value plus the sum of its dependencies' payloads."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        params = self.params
        missing = [d.payload_name for d in self.tracked_persistable_dependencies if not d.exists()]
        if missing:
            raise RuntimeError(
                f"{params.name} ran before its dependencies {missing} were committed"
            )
        if params.journal:
            entry = Path(params.journal) / f"{self.payload_name}.{params.name}.{uuid.uuid4().hex}"
            entry.write_text(f"{os.getpid()}\n")
        if params.sleep:
            time.sleep(params.sleep)
        if params.fail_if_exists and Path(params.fail_if_exists).exists():
            raise ValueError(f"boom in {params.name}")
        total: int = params.value + sum(d.payload for d in self.tracked_persistable_dependencies)
        return total


def step(
    store: StoreLike,
    name: str,
    *dependencies: Persistable[Any, Any],
    payload_name: str | None = None,
    **params: Any,
) -> Step:
    """A Step named ``name`` (also its payload name unless given) on ``store``."""
    return Step(
        store,
        StepParams(name, **params),
        list(dependencies),
        payload_name=payload_name or name,
    )


def journal_counts(journal: Path) -> dict[str, int]:
    """How many times each ``payload_name.name`` was generated."""
    counts: dict[str, int] = {}
    for entry in journal.iterdir():
        label = entry.name.rsplit(".", 1)[0]
        counts[label] = counts.get(label, 0) + 1
    return counts


def journal_pids(journal: Path) -> set[int]:
    """The process ids that generated something."""
    return {int(entry.read_text()) for entry in journal.iterdir()}


class Grand(Step):
    """Its value plus the payloads of its dependencies' dependencies (two levels up)."""

    def _generate_payload(self, **untracked_payload_params: Any) -> int:
        total: int = self.params.value + sum(
            grand.payload
            for dependency in self.tracked_persistable_dependencies
            for grand in dependency.tracked_persistable_dependencies
        )
        return total
