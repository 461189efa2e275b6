"""DatasetPersistable: manifests whose files are checked, copied into the artifact once per content, and resolved per store."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from numpy.typing import NDArray

from persistable import Persistable, PersistableParams, run
from persistable.datasets import DatasetPersistable
from persistable.exceptions import ManifestError
from persistable.io import PngFileIO
from persistable.samples import BaseSample, Compose, Processor
from persistable.store import LocalStore


@dataclass
class ReleaseParams(PersistableParams):
    """A dataset release."""

    release: str


class FileDataset(DatasetPersistable[ReleaseParams]):
    """A manifest handed in through load_generate(rows=...)."""

    filepath_columns = ("image_path", "projection_path")
    metadata_columns = ("cell_id",)

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        frame: pd.DataFrame = pd.DataFrame(untracked_payload_params["rows"])
        return frame


def _files(folder: Path, count: int) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for index in range(count):
        path = folder / f"cell_{index}.bin"
        path.write_bytes(f"content {index % 3}".encode())  # three distinct contents
        paths.append(path)
    return paths


def test_manifest_files_are_copied_deduplicated_and_resolved(tmp_path: Path) -> None:
    """Files are copied into the artifact once per checksum; the loaded manifest points inside it."""
    sources = _files(tmp_path / "src", 6)
    rows = {
        "cell_id": list(range(6)),
        "image_path": [str(path) for path in sources],
        "projection_path": [str(sources[0])] * 5 + [None],
    }
    store = tmp_path / "store"
    made = FileDataset(store, ReleaseParams("2026.12"))
    made.load_generate(rows=rows)
    artifact = Path(made.artifact_path)
    stored = sorted(p for p in (artifact / "payload.dataset" / "files").rglob("*") if p.is_file())
    assert len(stored) == 3
    for source in sources:
        source.unlink()  # the dataset no longer needs the originals
    loaded = FileDataset(store, ReleaseParams("2026.12"))
    loaded.load(verify=True)
    manifest = loaded.payload
    assert list(manifest["cell_id"]) == list(range(6))
    for index, value in enumerate(manifest["image_path"]):
        assert Path(value).is_relative_to(artifact)
        assert Path(value).read_bytes() == f"content {index % 3}".encode()
    assert pd.isna(manifest["projection_path"].iloc[5])
    files = loaded.files
    assert len(files) == 11
    assert set(files.columns) >= {"row", "column", "path", "source", "size", "xxh3_128", "cell_id"}
    assert files["size"].iloc[0] == len(b"content 0")
    made.verify()


def test_a_missing_file_names_row_and_column_and_writes_nothing(tmp_path: Path) -> None:
    """A manifest pointing at a missing file is refused before any artifact is written."""
    sources = _files(tmp_path / "src", 3)
    rows = {
        "cell_id": [0, 1, 2],
        "image_path": [str(sources[0]), str(tmp_path / "gone.bin"), str(sources[2])],
        "projection_path": [None, None, None],
    }
    store = tmp_path / "store"
    with pytest.raises(ManifestError, match=r"Row 1 .* column 'image_path', points at .*gone\.bin"):
        FileDataset(store, ReleaseParams("x")).load_generate(rows=rows)
    assert list(LocalStore(store).iter_artifacts()) == []


def test_a_missing_declared_column_is_named(tmp_path: Path) -> None:
    """A manifest without a declared column names it and the columns it has."""
    with pytest.raises(ManifestError, match="lacks the declared column 'projection_path'"):
        FileDataset(tmp_path, ReleaseParams("x")).load_generate(
            rows={"cell_id": [0], "image_path": [None]}
        )


def test_a_cell_that_is_not_a_path_is_named(tmp_path: Path) -> None:
    """A number where a path belongs names its row and column."""
    with pytest.raises(ManifestError, match=r"Row 0 .* column 'image_path', holds 3"):
        FileDataset(tmp_path, ReleaseParams("x")).load_generate(
            rows={"cell_id": [0], "image_path": [3], "projection_path": [None]}
        )


@dataclass
class CellParams(PersistableParams):
    """One cell."""

    cell_id: int


class CellImage(Persistable[Any, CellParams]):
    """A small PNG image per cell."""

    default_payload_io = PngFileIO()

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return np.full((8, 8), self.params.cell_id % 256, dtype=np.uint8)


class CellDataset(DatasetPersistable[ReleaseParams]):
    """The fan-in over every cell: one manifest row per cell image artifact."""

    filepath_columns = ("image_path",)
    metadata_columns = ("cell_id",)

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        cells = self.tracked_persistable_dependencies
        frame: pd.DataFrame = pd.DataFrame(
            {
                "cell_id": [cell.params.cell_id for cell in cells],
                "image_path": [f"{cell.artifact_path}/{cell.payload_file}" for cell in cells],
            }
        )
        return frame


def test_dataset_is_the_fan_in_over_mapped_persistables(tmp_path: Path) -> None:
    """A dataset over mapped cell artifacts (a role of tracked dependencies) runs after them."""
    cells = CellImage.map([CellParams(i) for i in range(10)], tmp_path)
    dataset = CellDataset(tmp_path, ReleaseParams("r1"), {"cells": cells})
    report = run([dataset], executor="threads", max_workers=2)
    assert report.ok, report
    manifest = CellDataset(tmp_path, ReleaseParams("r1"), {"cells": cells}).payload
    assert list(manifest["cell_id"]) == list(range(10))
    assert all(Path(path).is_file() for path in manifest["image_path"])
    other = CellDataset(tmp_path, ReleaseParams("r1"), {"cells": cells[:9]})
    assert other.persist_hash != dataset.persist_hash  # the fan-in's keys are in the key


class Cell(BaseSample):
    """A mapped sample: an id and an image."""

    image: NDArray[np.uint8]


class Brighten(Processor):
    """Adds ``amount`` to every pixel."""

    amount: int = 10

    def process(self, sample: Cell) -> Cell:
        sample.image = (sample.image + self.amount).astype(np.uint8)
        return sample


class MappedDataset(DatasetPersistable[ReleaseParams]):
    """The manifest handed in through load_generate(rows=...), with one image per cell."""

    filepath_columns = ("image_path",)
    metadata_columns = ("cell_id",)

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        frame: pd.DataFrame = pd.DataFrame(untracked_payload_params["rows"])
        return frame


@pytest.mark.s3
def test_a_manifest_over_100_mapped_samples_on_s3(s3_bucket: tuple[str, dict[str, Any]]) -> None:
    """100 samples mapped through a pipeline, their PNGs on S3, one dataset on S3 whose paths load as URLs."""
    import s3fs

    from persistable.testing import roundtrip

    url, options = s3_bucket
    samples = [Cell(id=f"cell{i:03d}", image=np.full((6, 6), i, np.uint8)) for i in range(100)]
    processed = Compose([Brighten(amount=5)]).map(samples, executor="threads", max_workers=4)
    fs = s3fs.S3FileSystem(**options, skip_instance_cache=True)
    staging = f"{url.removeprefix('s3://')}-staging"
    fs.pipe({f"{staging}/{cell.id}.png": _png(cell.image) for cell in processed})
    rows = {
        "cell_id": [cell.id for cell in processed],
        "image_path": [f"s3://{staging}/{cell.id}.png" for cell in processed],
    }
    made = MappedDataset(url, ReleaseParams("2026.12"), storage_options=options)
    made.load_generate(rows=rows)
    loaded = MappedDataset(url, ReleaseParams("2026.12"), storage_options=options)
    manifest = loaded.payload
    assert list(manifest["cell_id"]) == [f"cell{i:03d}" for i in range(100)]
    path = manifest["image_path"].iloc[7]
    assert path.startswith(f"{url}/mapped_dataset/")
    assert "/payload.dataset/files/" in path
    back = roundtrip(PngFileIO(), _png_array(fs.cat_file(path)))
    assert int(back[0, 0]) == 7 + 5
    assert len(loaded.files) == 100
    assert loaded.associates(7) == {"image_path": [path]}  # each row is its sample's files
    fs.rm_file(f"{staging}/cell050.png")
    with pytest.raises(ManifestError, match=r"Row 50 .* column 'image_path'"):
        MappedDataset(url, ReleaseParams("again"), storage_options=options).load_generate(rows=rows)
    assert not MappedDataset(url, ReleaseParams("again"), storage_options=options).exists()


def _png(image: np.ndarray[Any, Any]) -> bytes:
    import io

    buffer = io.BytesIO()
    PngFileIO().save(image, buffer)
    return buffer.getvalue()


def _png_array(data: bytes) -> Any:
    import io

    return PngFileIO().load(io.BytesIO(data))
