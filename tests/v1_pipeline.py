"""A pipeline written for persistable 1.x, kept as 1.x code would be (it runs under 1.3.1 too).

It uses the 1.x import paths, a path-based FileIO that writes CSV (``_save``/``_load``
on a file path), a custom payload suffix, a tracked dependency, a ``Path`` and an
``Enum`` param, and a ``PersistableParam`` excluded from the hash. The tests run it
unchanged against this package, and against the real 1.3.1 in its own virtual env to
write a real 1.x cache (``write_v1_cache``).
"""

from __future__ import annotations

import enum
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from persistable.base import Persistable
from persistable.data import PersistableParam, PersistableParams
from persistable.exceptions import InvalidPayloadError
from persistable.io import FileIO

#: Every _generate_payload call, by payload name (the tests count regenerations).
GENERATED: list[str] = []


class CsvFileIO(FileIO[NDArray[np.float64]]):
    """A 1.x custom FileIO: one float per line, written to and read from a file path."""

    def _save(self, payload: NDArray[np.float64], filepath: Path, **kwargs: Any) -> None:
        np.savetxt(filepath, payload, delimiter=",")

    def _load(self, filepath: Path, **kwargs: Any) -> NDArray[np.float64]:
        return np.loadtxt(filepath, delimiter=",", ndmin=1)


class Distribution(enum.Enum):
    UNIFORM = "uniform"
    NORMAL = "normal"


@dataclass
class PointsParams(PersistableParams):
    n: int
    distribution: Distribution = Distribution.UNIFORM
    source: Path = Path("raw") / "points"
    random_state: int = 100


class PointsP(Persistable[NDArray[np.float64], PointsParams]):
    def __init__(self, data_dir: Path, params: PointsParams) -> None:
        super().__init__(
            data_dir,
            params,
            tracked_persistable_dependencies=None,
            payload_io=CsvFileIO(),
            payload_file_suffix=".csv",
        )

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        GENERATED.append(self.payload_name)
        rng = np.random.RandomState(self.params.random_state)
        if self.params.distribution is Distribution.NORMAL:
            return rng.normal(size=self.params.n)
        return rng.random_sample(self.params.n)

    def _validate_payload(self, payload: NDArray[np.float64]) -> None:
        if len(payload) != self.params.n:
            raise InvalidPayloadError(f"expected {self.params.n} points, got {len(payload)}")


@dataclass
class ScaleParams(PersistableParams):
    factor: float
    labels: tuple[str, ...] = ("a", "b")


class ScaledP(Persistable[NDArray[np.float64], ScaleParams]):
    """Pickled (1.x's default FileIO), tracking the points it scales."""

    def __init__(self, data_dir: Path, params: ScaleParams, *, points_p: PointsP) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[points_p])
        self.points_p = points_p

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        GENERATED.append(self.payload_name)
        return self.points_p.payload * self.params.factor


@dataclass
class SummaryParams(PersistableParams):
    quantile: float
    # 1.x hashed this wrapper's repr (a memory address): only this package honours it.
    n_jobs: PersistableParam[int] = PersistableParam(1, exclude_from_file_hash=True)  # noqa: RUF009


class SummaryP(Persistable[float, SummaryParams]):
    def __init__(self, data_dir: Path, params: SummaryParams, *, scaled_p: ScaledP) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[scaled_p])
        self.scaled_p = scaled_p

    def _generate_payload(self, **untracked_payload_params: Any) -> float:
        GENERATED.append(self.payload_name)
        return float(np.quantile(self.scaled_p.payload, self.params.quantile))


def build(data_dir: Any, n: int = 50) -> tuple[PointsP, ScaledP, SummaryP]:
    """The three steps over ``data_dir`` (a Path for 1.x; any data_dir for this package)."""
    points = PointsP(data_dir, PointsParams(n=n, distribution=Distribution.NORMAL))
    scaled = ScaledP(data_dir, ScaleParams(factor=2.5), points_p=points)
    summary = SummaryP(data_dir, SummaryParams(quantile=0.9), scaled_p=scaled)
    return points, scaled, summary


def write_v1_cache(data_dir: Path, n: int) -> None:
    """Under 1.3.1: persist the points and the scaled points (1.x cannot reload a summary)."""
    points, scaled, _ = build(data_dir, n)
    scaled.load_generate()
    print(points.persist_hash, scaled.persist_hash)


if __name__ == "__main__":
    write_v1_cache(Path(sys.argv[1]), int(sys.argv[2]))
