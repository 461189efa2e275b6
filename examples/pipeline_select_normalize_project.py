"""Select -> normalize -> project over many cells, then a dataset-level manifest, with persistable.run.

The workflow shape of the "databacked" plan (seed 002): per cell, select its data
from a field of view, normalize it and store a max projection; then build one
dataset manifest over every projection. The per-cell steps are built with
``Persistable.map``; the dataset step tracks every projection through a fan-in role
(``{"projections": [...]}``), so one ``persistable.run`` in a process pool resolves the
whole DAG. Run the script twice: the first run generates every artifact, the second
finds them all and loads.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

import persistable
from persistable import JsonFileIO, NpyFileIO, Persistable, PersistableParams, RunReport

DATA_DIR = Path(__file__).resolve().parent.parent / "demo-data" / "pipeline"
CELLS = range(6)

Array = NDArray[np.float64]


@dataclass
class SelectParams(PersistableParams):
    """Which cell of which field of view (stands in for an image path and a cell index)."""

    fov: int
    cell: int
    shape: tuple[int, int, int] = (8, 64, 64)


class Select(Persistable[Array, SelectParams]):
    """The cell's ZYX data cut out of its field of view."""

    default_payload_io = NpyFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> Array:
        rng = np.random.default_rng([self.params.fov, self.params.cell])
        return rng.gamma(2.0 + self.params.cell, size=self.params.shape)


@dataclass
class NormalizeParams(PersistableParams):
    """How to normalize: clip to percentiles, then scale to [0, 1]."""

    low_percentile: float = 1.0
    high_percentile: float = 99.0


class Normalize(Persistable[Array, NormalizeParams]):
    """The selected cell, clipped and scaled to [0, 1]."""

    default_payload_io = NpyFileIO()

    def __init__(self, data_dir: Any, params: NormalizeParams, *, selected: Select) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[selected])
        self.selected = selected

    def _generate_payload(self, **untracked_payload_params: Any) -> Array:
        data = self.selected.payload
        low, high = np.percentile(data, [self.params.low_percentile, self.params.high_percentile])
        scaled: Array = (np.clip(data, low, high) - low) / (high - low)
        return scaled


@dataclass
class ProjectParams(PersistableParams):
    """Which axis to max-project along (0 is Z)."""

    axis: int = 0


class Project(Persistable[Array, ProjectParams]):
    """The max projection of a normalized cell."""

    default_payload_io = NpyFileIO()

    def __init__(self, data_dir: Any, params: ProjectParams, *, normalized: Normalize) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[normalized])
        self.normalized = normalized

    def _generate_payload(self, **untracked_payload_params: Any) -> Array:
        projection: Array = self.normalized.payload.max(axis=self.params.axis)
        return projection


@dataclass
class DatasetParams(PersistableParams):
    """How many decimals the manifest's statistics keep."""

    decimals: int = 6


class ProjectionDataset(Persistable[list[dict[str, Any]], DatasetParams]):
    """A manifest over every cell projection: one row per cell with its path and statistics."""

    default_payload_io = JsonFileIO()

    def __init__(self, data_dir: Any, params: DatasetParams, *, projections: list[Project]) -> None:
        # A fan-in: every projection's key enters this key, in order, under one role.
        super().__init__(data_dir, params, {"projections": projections})
        self.projections = projections

    def _generate_payload(self, **untracked_payload_params: Any) -> list[dict[str, Any]]:
        rows = []
        for projection in self.projections:
            image = projection.payload
            selected = projection.normalized.selected.params
            rows.append(
                {
                    "fov": selected.fov,
                    "cell": selected.cell,
                    "projection_key": projection.persist_hash,
                    "projection_path": str(projection.artifact_path),
                    "mean": round(float(image.mean()), self.params.decimals),
                    "max": round(float(image.max()), self.params.decimals),
                }
            )
        return rows


def build(data_dir: Path) -> tuple[list[Project], ProjectionDataset]:
    """The per-cell steps (with ``Persistable.map``) and the dataset-level step over them."""
    selected = Select.map([SelectParams(fov=7, cell=cell) for cell in CELLS], data_dir=data_dir)
    store = selected[0].store
    normalized = [Normalize(store, NormalizeParams(), selected=s) for s in selected]
    projections = [Project(store, ProjectParams(), normalized=n) for n in normalized]
    return projections, ProjectionDataset(store, DatasetParams(), projections=projections)


def summarize(label: str, report: RunReport) -> None:
    """Print one line of counts and the report table."""
    print(
        f"{label}: generated {len(report.generated)}, loaded {len(report.loaded)}, "
        f"failed {len(report.failed)}"
    )
    print(report)
    print()


def main(data_dir: Path = DATA_DIR) -> None:
    """Run the whole DAG in a process pool: per-cell chains in parallel, then the dataset step."""
    _, dataset = build(data_dir)
    # Each cell's chain starts as soon as its inputs exist; the dataset step runs last
    # and reads every projection from the store.
    summarize("pipeline", persistable.run([dataset], executor="processes", max_workers=2))
    manifest = dataset.payload
    print(f"Manifest of {len(manifest)} cells, first row: {manifest[0]}")
    print(f"Artifacts are in {data_dir}; run again to load them instead of generating.")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_DIR)
