"""Dataset associates: the files of the rows that came from one sample are linked, in the artifact and in a package."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

import persistable
from persistable import PersistableParams
from persistable.datasets import DatasetPersistable, ManifestFileIO
from persistable.exceptions import ManifestError, PersistableWarning


@dataclass
class ReleaseParams(PersistableParams):
    """A dataset release."""

    release: str


class RowDataset(DatasetPersistable[ReleaseParams]):
    """Each row is one sample (no sample_column): its two files are linked."""

    filepath_columns = ("image_path", "projection_path")
    metadata_columns = ("cell_id",)

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        frame: pd.DataFrame = pd.DataFrame(untracked_payload_params["rows"])
        return frame


class CellDataset(DatasetPersistable[ReleaseParams]):
    """Several rows per cell (one per channel), linked by ``cell_id``."""

    filepath_columns = ("channel_path", "mask_path")
    metadata_columns = ("cell_id", "channel")
    sample_column = "cell_id"

    def _generate_payload(self, **untracked_payload_params: Any) -> pd.DataFrame:
        frame: pd.DataFrame = pd.DataFrame(untracked_payload_params["rows"])
        return frame


def _write(folder: Path, name: str, text: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return str(path)


def _cells(folder: Path) -> dict[str, list[Any]]:
    """Two cells, two channel rows each; both cells' masks have the same content (one copy)."""
    rows: dict[str, list[Any]] = {"cell_id": [], "channel": [], "channel_path": [], "mask_path": []}
    for cell in ("a", "b"):
        for channel in (0, 1):
            rows["cell_id"].append(cell)
            rows["channel"].append(channel)
            rows["channel_path"].append(_write(folder, f"{cell}{channel}.txt", f"{cell}/{channel}"))
            rows["mask_path"].append(
                _write(folder, f"{cell}_mask.txt", "same mask") if channel == 0 else None
            )
    return rows


def test_files_of_one_row_are_associates(tmp_path: Path) -> None:
    """Without a sample_column, every file entry lists the files of its own row."""
    rows = {
        "cell_id": [0, 1],
        "image_path": [_write(tmp_path / "src", f"i{i}.txt", f"image {i}") for i in range(2)],
        "projection_path": [_write(tmp_path / "src", "p0.txt", "projection 0"), None],
    }
    made = RowDataset(tmp_path / "store", ReleaseParams("r1"))
    made.load_generate(rows=rows)
    files = made.files
    first = files[files["row"] == 0]
    assert len(first) == 2
    expected = {
        "image_path": [first[first["column"] == "image_path"]["path"].item()],
        "projection_path": [first[first["column"] == "projection_path"]["path"].item()],
    }
    assert [json.loads(text) for text in first["associates"]] == [expected, expected]
    assert list(files[files["row"] == 1]["sample"]) == [1]
    assert json.loads(files[files["row"] == 1]["associates"].item()) == {
        "image_path": [files[files["row"] == 1]["path"].item()]
    }
    for source in (tmp_path / "src").iterdir():
        source.unlink()  # once committed, the payload is the artifact's manifest
    assert Path(made.payload["image_path"][0]).is_relative_to(made.artifact_path)
    loaded = RowDataset(tmp_path / "store", ReleaseParams("r1"))
    linked = loaded.associates(0)
    assert Path(linked["image_path"][0]).read_text() == "image 0"
    assert Path(linked["projection_path"][0]).read_text() == "projection 0"
    assert loaded.associates(1) == {"image_path": [loaded.payload["image_path"][1]]}
    assert loaded.linked_rows(1) == [1]


def test_rows_of_one_sample_are_linked_across_rows(tmp_path: Path) -> None:
    """With sample_column, the rows sharing a value are one sample; a shared file stays in both samples."""
    made = CellDataset(tmp_path / "store", ReleaseParams("r1"))
    made.load_generate(rows=_cells(tmp_path / "src"))
    files = made.files
    assert sorted(set(files["sample"])) == ["a", "b"]
    masks = files[files["column"] == "mask_path"]
    assert masks["path"].nunique() == 1  # one copy of the shared content
    for cell in ("a", "b"):
        entries = files[files["sample"] == cell]
        links = {text for text in entries["associates"]}
        assert len(links) == 1  # every file of the sample carries the same links
        linked = json.loads(links.pop())
        assert linked == {
            "channel_path": list(entries[entries["column"] == "channel_path"]["path"]),
            "mask_path": list(entries[entries["column"] == "mask_path"]["path"]),
        }
    loaded = CellDataset(tmp_path / "store", ReleaseParams("r1"))
    assert loaded.linked_rows(3) == [2, 3]
    linked_b = loaded.associates(3)
    assert [Path(path).read_text() for path in linked_b["channel_path"]] == ["b/0", "b/1"]
    assert [Path(path).read_text() for path in linked_b["mask_path"]] == ["same mask"]
    with pytest.raises(IndexError, match="row 4 is outside"):
        loaded.associates(4)


def test_a_bad_sample_column_names_the_row_and_writes_nothing(tmp_path: Path) -> None:
    """A missing sample_column, or a row without a sample id, is refused before anything is written."""
    rows = _cells(tmp_path / "src")
    no_column = {key: value for key, value in rows.items() if key != "cell_id"}
    dataset = CellDataset(tmp_path / "store", ReleaseParams("r1"))
    with pytest.raises(ManifestError, match="lacks the declared column 'cell_id'"):
        dataset.load_generate(rows=no_column)
    rows["cell_id"][2] = None
    with pytest.raises(ManifestError, match=r"Row 2 .* sample_column 'cell_id', has no sample id"):
        dataset.load_generate(rows=rows)
    assert not dataset.exists()
    with pytest.raises(ManifestError, match="'associates' of Cells has the name of a column"):
        ManifestFileIO(["path"], ["associates"], owner="Cells")


def test_a_published_package_keeps_the_links(tmp_path: Path) -> None:
    """checkout() gives a Package whose associates() follows the same links as the dataset."""
    made = CellDataset(tmp_path / "store", ReleaseParams("r1"))
    made.load_generate(rows=_cells(tmp_path / "src"))
    destination = tmp_path / "published"
    persistable.publish(made, destination, name="lab/cells", allow_dirty=True, repository=tmp_path)
    package = persistable.checkout(destination, "lab/cells")
    assert package.sample_column == "cell_id"
    assert package.linked_rows(0) == [0, 1]
    linked = package.associates(0)
    assert [Path(path).read_text() for path in linked["channel_path"]] == ["a/0", "a/1"]
    assert all(Path(path).is_relative_to(package.location) for path in linked["channel_path"])
    table = pd.read_parquet(Path(package.location) / "files.parquet")
    assert set(table["sample"]) == {"a", "b"}


def test_columns_declared_after_the_artifact_was_made_warn_on_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A dataset class that now declares another file column warns that the artifact predates it."""
    made = CellDataset(tmp_path / "store", ReleaseParams("r1"))
    made.load_generate(rows=_cells(tmp_path / "src"))
    monkeypatch.setattr(CellDataset, "filepath_columns", ("channel_path",))
    with pytest.warns(
        PersistableWarning, match=r"was made with filepath_columns=\['channel_path', "
    ):
        CellDataset(tmp_path / "store", ReleaseParams("r1")).load()
