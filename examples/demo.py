"""The main job of ``make demo``: a small pipeline on a local store.

Run it twice: the first run generates and persists every artifact, the second loads them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from persistable import NpyFileIO, Persistable, PersistableParams

DATA_DIR = Path(__file__).resolve().parent.parent / "demo-data"


@dataclass
class PointsParams(PersistableParams):
    """How many Gaussian points to draw, and from which seed."""

    n: int
    seed: int = 0


class Points(Persistable[NDArray[np.float64], PointsParams]):
    """Gaussian points, stored as ``.npy``."""

    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float64]:
        time.sleep(0.5)  # stands in for an expensive computation
        return np.random.default_rng(self.params.seed).normal(size=self.params.n)


@dataclass
class SummaryParams(PersistableParams):
    """Which quantiles to summarise the points by."""

    quantiles: tuple[float, ...] = (0.05, 0.5, 0.95)


class Summary(Persistable[dict[str, float], SummaryParams]):
    """Quantiles of the upstream points (a tracked dependency)."""

    def __init__(self, data_dir: Path, params: SummaryParams, *, points: Points) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[points])
        self.points = points

    def _generate_payload(self, **untracked_payload_params: Any) -> dict[str, float]:
        values = np.quantile(self.points.payload, self.params.quantiles)
        return {f"q{q:g}": float(v) for q, v in zip(self.params.quantiles, values, strict=True)}


def main() -> None:
    """Build the pipeline for three seeds and report what was generated or loaded."""
    for seed in range(3):
        points = Points(DATA_DIR, PointsParams(n=10_000, seed=seed))
        summary = Summary(DATA_DIR, SummaryParams(), points=points)
        existed = summary.exists()
        started = time.perf_counter()
        payload = summary.payload
        elapsed = time.perf_counter() - started
        action = "loaded" if existed else "generated"
        print(f"seed={seed}: {action:9s} in {elapsed * 1000:7.1f} ms  {payload}")
        print(f"          artifact: {summary.artifact_path}")
    print(f"Artifacts are in {DATA_DIR}; run `make demo` again to load them instead.")


if __name__ == "__main__":
    main()
