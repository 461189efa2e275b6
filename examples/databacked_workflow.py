"""The seed-002 ("databacked") workflow, extended: OME-TIFF and PNG serializers, datasets, a published package.

Per cell: select its CZYX data from a field of view, normalize it (stored as an
OME-TIFF with channel names and physical pixel sizes) and max-project it (stored as a
PNG). Then two dataset-level results, manifests whose files are copied into their
artifacts: the normalized cells and the projections. Finally the projection dataset
is published as a versioned package tied to the code's git commit, and checked out
again. The data directory is a local folder here; an ``s3://bucket/prefix`` string
instead of it is the only change needed to run on S3. Run it twice: the second run
loads everything.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

import persistable
from persistable import DatasetPersistable, Persistable, PersistableParams
from persistable.exceptions import PublishError
from persistable.io import OmeTiffFileIO, PngFileIO

DATA_DIR = Path(__file__).resolve().parent.parent / "demo-data" / "databacked"
CELLS = range(4)
CHANNELS = ["dna", "membrane"]


@dataclass
class SelectParams(PersistableParams):
    """Which cell of which field of view (stands in for an image path and a cell index)."""

    fov: int
    cell: int


class SelectCell(Persistable[NDArray[np.uint16], SelectParams]):
    """The cell's CZYX data cut out of its field of view (synthetic here)."""

    default_payload_io = OmeTiffFileIO(dims="CZYX", channel_names=CHANNELS)

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.uint16]:
        rng = np.random.default_rng([self.params.fov, self.params.cell])
        data: NDArray[np.uint16] = rng.integers(0, 4000, (2, 6, 48, 48), dtype=np.uint16)
        return data


@dataclass
class NormalizeParams(PersistableParams):
    """Clip each channel to this upper percentile, then scale to [0, 1]."""

    percentile: float = 99.5


class NormalizeCell(Persistable[NDArray[np.float32], NormalizeParams]):
    """The normalized cell, as an OME-TIFF (the seed's ``ArrayToOmeTiff(dimensions="CZYX", ...)``)."""

    default_payload_io = OmeTiffFileIO(
        dims="CZYX",
        channel_names=CHANNELS,
        physical_pixel_sizes={"Z": 0.29, "Y": 0.108, "X": 0.108},
    )

    def __init__(self, data_dir: Any, params: NormalizeParams, *, selected: SelectCell) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[selected])
        self.selected = selected

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.float32]:
        data = self.selected.payload.astype(np.float32)
        top = np.percentile(data, self.params.percentile, axis=(1, 2, 3), keepdims=True)
        normalized: NDArray[np.float32] = np.clip(data / top, 0.0, 1.0).astype(np.float32)
        return normalized


@dataclass
class ProjectParams(PersistableParams):
    """Which channel to max-project along Z."""

    channel: int = 1


class ProjectCell(Persistable[NDArray[np.uint8], ProjectParams]):
    """A max projection as an 8-bit PNG (the seed's ``ArrayToDefaultWriter`` with ``.png``)."""

    default_payload_io = PngFileIO()

    def __init__(self, data_dir: Any, params: ProjectParams, *, normalized: NormalizeCell) -> None:
        super().__init__(data_dir, params, tracked_persistable_dependencies=[normalized])
        self.normalized = normalized

    def _generate_payload(self, **untracked_payload_params: Any) -> NDArray[np.uint8]:
        projection = self.normalized.payload[self.params.channel].max(axis=0)
        image: NDArray[np.uint8] = (projection * 255).round().astype(np.uint8)
        return image


@dataclass
class DatasetParams(PersistableParams):
    """The release name of a dataset."""

    release: str = "2026.12"


def _file(persistable_: Persistable[Any, Any]) -> str:
    return f"{persistable_.artifact_path}/{persistable_.payload_file}"


class NormalizedCellDataset(DatasetPersistable[DatasetParams]):
    """The manifest of normalized cells (the seed's ``create_normalized_cell_dataset``)."""

    filepath_columns = ("normalized_cell_path",)
    metadata_columns = ("cell_id", "cell_index")

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        rows = [
            {
                "cell_id": f"fov{cell.selected.params.fov}-cell{cell.selected.params.cell}",
                "cell_index": cell.selected.params.cell,
                "normalized_cell_path": _file(cell),
            }
            for cell in self.tracked_persistable_dependencies
            if isinstance(cell, NormalizeCell)
        ]
        frame: pd.DataFrame = pd.DataFrame(rows)
        return frame


class CellProjectionDataset(DatasetPersistable[DatasetParams]):
    """The manifest of cell projections (the seed's ``create_cell_projection_dataset``)."""

    filepath_columns = ("cell_projection_path",)
    metadata_columns = ("cell_id", "cell_index")

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        rows = [
            {
                "cell_id": f"fov{p.normalized.selected.params.fov}-cell{p.normalized.selected.params.cell}",
                "cell_index": p.normalized.selected.params.cell,
                "cell_projection_path": _file(p),
            }
            for p in self.tracked_persistable_dependencies
            if isinstance(p, ProjectCell)
        ]
        frame: pd.DataFrame = pd.DataFrame(rows)
        return frame


def build(data_dir: Any) -> tuple[NormalizedCellDataset, CellProjectionDataset]:
    """The per-cell chains and the two dataset-level results over them."""
    selected = SelectCell.map([SelectParams(fov=7, cell=cell) for cell in CELLS], data_dir)
    store = selected[0].store
    normalized = [NormalizeCell(store, NormalizeParams(), selected=s) for s in selected]
    projections = [ProjectCell(store, ProjectParams(), normalized=n) for n in normalized]
    return (
        NormalizedCellDataset(store, DatasetParams(), {"cells": normalized}),
        CellProjectionDataset(store, DatasetParams(), {"projections": projections}),
    )


def main(data_dir: Path = DATA_DIR) -> None:
    """Run the DAG in a process pool, then publish the projection dataset and check it out."""
    cells, projections = build(data_dir)
    report = persistable.run([cells, projections], executor="processes", max_workers=2)
    print(report)
    print(projections.payload.head(2).to_string())
    published = data_dir / "published"
    try:
        package = persistable.publish(
            projections, published, name="demo/cell-projections", repository=Path(__file__).parent
        )
    except PublishError as error:
        # A development tree is often dirty: publish anyway, and the README says so.
        print(f"publish refused ({error}); publishing with allow_dirty=True")
        package = persistable.publish(
            projections,
            published,
            name="demo/cell-projections",
            repository=Path(__file__).parent,
            allow_dirty=True,
        )
    checked = persistable.checkout(published, "demo/cell-projections")
    assert checked.version == package.version
    print(f"Published demo/cell-projections version {package.version[:16]}... in {published}")
    print(checked.readme.splitlines()[2])


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else DATA_DIR)
