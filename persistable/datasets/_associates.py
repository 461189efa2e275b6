"""Associates: the files of the manifest rows that came from one sample, linked to each other.

As in datastep, every file entry of ``files.parquet`` carries ``associates``: a JSON
object mapping each file column to the paths (relative to the dataset folder) of the
files of its sample. A sample is a row, or, when the dataset declares a
``sample_column``, every row that holds the same value there. After loading, the same
links are followed on the manifest itself (:func:`linked_rows`, :func:`associates`).
"""

from __future__ import annotations

import json
from collections.abc import Hashable, Sequence
from typing import TYPE_CHECKING, Any

from persistable.exceptions import ManifestError

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ASSOCIATES", "SAMPLE", "associates", "link", "linked_rows", "sample_keys"]

#: Column of ``files.parquet`` naming the sample a file came from.
SAMPLE = "sample"
#: Column of ``files.parquet`` holding the JSON map of a sample's files.
ASSOCIATES = "associates"


def _missing(value: object) -> bool:
    return value is None or (isinstance(value, float) and value != value)


def sample_keys(manifest: pd.DataFrame, sample_column: str | None, owner: str) -> list[Hashable]:
    """The sample of each row: its position, or its value in ``sample_column`` (checked)."""
    if sample_column is None:
        return list(range(len(manifest)))
    if sample_column not in manifest.columns:
        raise ManifestError(
            f"The manifest of {owner} lacks its sample_column {sample_column!r} (it has "
            f"{list(map(str, manifest.columns))}); add the column or set sample_column = None."
        )
    keys: list[Hashable] = []
    for row, value in enumerate(manifest[sample_column].tolist()):
        if _missing(value) or not isinstance(value, Hashable):
            raise ManifestError(
                f"Row {row} of the manifest of {owner}, sample_column {sample_column!r}, has no "
                f"sample id ({value!r}); give every row one (a string or a number)."
            )
        keys.append(value)
    return keys


def link(records: Sequence[dict[str, Any]], keys: Sequence[Hashable]) -> None:
    """Give every file record its ``sample`` and the ``associates`` of that sample.

    ``records`` hold ``row``, ``column`` and ``path`` (in the order the files were
    listed: column by column, rows in order); ``keys[row]`` is the row's sample.
    """
    groups: dict[Hashable, dict[str, list[str]]] = {}
    for record in records:
        paths = groups.setdefault(keys[record["row"]], {}).setdefault(record["column"], [])
        if record["path"] not in paths:
            paths.append(record["path"])
    encoded = {key: json.dumps(group) for key, group in groups.items()}
    for record in records:
        key = keys[record["row"]]
        record[SAMPLE] = key
        record[ASSOCIATES] = encoded[key]


def linked_rows(manifest: pd.DataFrame, row: int, sample_column: str | None) -> list[int]:
    """Positions of the rows that came from the same sample as ``row`` (``row`` included)."""
    if not 0 <= row < len(manifest):
        raise IndexError(f"row {row} is outside the manifest's {len(manifest)} rows.")
    if sample_column is None:
        return [row]
    values = manifest[sample_column].tolist()
    return [position for position, value in enumerate(values) if value == values[row]]


def associates(
    manifest: pd.DataFrame, row: int, sample_column: str | None, filepath_columns: Sequence[str]
) -> dict[str, list[str]]:
    """The files of ``row``'s sample by column, as the manifest's paths (each once, in row order)."""
    found: dict[str, list[str]] = {}
    rows = linked_rows(manifest, row, sample_column)
    for column in filepath_columns:
        cells = manifest[column].tolist()
        paths: list[str] = []
        for position in rows:
            value = cells[position]
            if not _missing(value) and value not in paths:
                paths.append(str(value))
        if paths:
            found[column] = paths
    return found
