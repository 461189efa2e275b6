"""Samples and processors for the samples tests, importable so worker processes can unpickle them.

Each ``process`` call drops a file into a journal folder (processor, sample id, pid),
so tests count how often a processor really ran across threads, processes and Dask.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, Field

from persistable.samples import BaseSample, Processor


def journal_entries(journal: Path, processor: str | None = None) -> list[str]:
    """The sample ids a processor (or every processor) was run on, according to the journal."""
    names = sorted(path.name for path in journal.iterdir()) if journal.exists() else []
    return [
        name.split("--")[1]
        for name in names
        if processor is None or name.split("--")[0] == processor
    ]


def _note(journal: str, processor: str, sample_id: object) -> None:
    if journal:
        folder = Path(journal)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{processor}--{sample_id}--{os.getpid()}-{uuid.uuid4().hex[:8]}").touch()


class Number(BaseSample):
    """A sample holding one number."""

    value: float = 0.0


class Cell(BaseSample):
    """A sample with an image, an optional mask and extra fields of a subclass."""

    image: NDArray[np.float32]
    mask: NDArray[np.bool_] | None = None
    label: str = ""


@dataclass
class PlainSample:
    """A dataclass sample (no pydantic model)."""

    id: str
    value: float
    processing_history: list[Any] = field(default_factory=list)


class Add(Processor):
    """Adds ``step`` to ``value``."""

    step: float = 1.0
    journal: str = ""
    fail_on: str = ""

    def process(self, sample: Any) -> Any:
        _note(self.journal, "Add", sample.id)
        if sample.id == self.fail_on:
            raise ValueError(f"cannot add to {sample.id}")
        sample.value = sample.value + self.step
        return sample


class Scale(Processor):
    """Multiplies ``value`` by ``factor``."""

    factor: float = 2.0
    journal: str = ""

    def process(self, sample: Any) -> Any:
        _note(self.journal, "Scale", sample.id)
        sample.value = sample.value * self.factor
        return sample


class Normalize(Processor):
    """Divides the image by its ``percentile``-th percentile."""

    percentile: float = 99.5
    journal: str = ""

    def process(self, sample: Cell) -> Cell:
        _note(self.journal, "Normalize", sample.id)
        top = float(np.percentile(sample.image, self.percentile)) or 1.0
        sample.image = (sample.image / top).astype(np.float32)
        return sample


class Segment(Processor):
    """Thresholds the image into a mask."""

    threshold: float = 0.5

    def process(self, sample: Cell) -> Cell:
        sample.mask = sample.image > self.threshold
        return sample


class Burn(Processor):
    """Spends CPU time: a fixed number of rounds of arithmetic on ``value``."""

    rounds: int = 200_000

    def process(self, sample: Any) -> Any:
        total = 0
        for index in range(self.rounds):
            total = (total + index * index) % 1_000_003
        sample.value = sample.value + total % 7
        return sample


class Optics(BaseModel):
    """A nested pydantic model (not a sample) inside a sample's field."""

    magnification: int = 40
    filters: set[str] = Field(default_factory=set)


class Specimen(BaseSample):
    """A sample with every kind of field the sample key encodes (the golden keys' cases)."""

    image: Any = None
    mask: Any = None
    optics: Optics | None = None
    tags: list[Any] = Field(default_factory=list)
    score: float = 0.0


def golden_specimens() -> dict[str, Specimen]:
    """The samples whose keys tests/test_samples_golden.py freezes."""
    image = np.arange(48, dtype=">i4").reshape(6, 8)[::2, 1:5]  # big-endian, not contiguous
    return {
        "plain": Specimen(id="c1"),
        "arrays": Specimen(id="c2", image=image, mask=np.eye(3, dtype=bool), score=float("nan")),
        "nested": Specimen(
            id="n7", optics=Optics(filters={"ex488", "em525"}), tags=[Optics(), "x", 2]
        ),
        "history": Specimen(
            id="c3",
            processing_history=[("Scale", {"factor": 2.0}, "k1-" + "0" * 64)],
            image=np.zeros((2, 2), dtype=[("a", "<i2"), ("b", "<f8")]),
        ),
    }


class Brighten(Processor):
    """Adds ``step`` to the image in place (the array it got, not a new one)."""

    step: float = 1.0
    fail_on: str = ""

    def process(self, sample: Cell) -> Cell:
        if sample.id == self.fail_on:
            raise ValueError(f"cannot brighten {sample.id}")
        sample.image += np.float32(self.step)
        return sample


def _only_in(pid: int) -> OnlyHere:
    if os.getpid() != pid:
        raise RuntimeError(f"made in process {pid}, cannot be rebuilt in {os.getpid()}")
    return OnlyHere(pid)


class OnlyHere:
    """A value that unpickles only in the process that made it (a worker cannot rebuild it)."""

    def __init__(self, pid: int | None = None) -> None:
        self.pid = os.getpid() if pid is None else pid

    def __reduce__(self) -> tuple[Any, tuple[int]]:
        return _only_in, (self.pid,)
