"""``DatasetPersistable``: a dataset-level persistable whose payload is a manifest of files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from persistable._persistable import Dependencies, Persistable, PersistableParamsT
from persistable.datasets import _associates
from persistable.datasets._manifest import ManifestFileIO
from persistable.store import StoreLike

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["DatasetPersistable"]


class DatasetPersistable(Persistable["pd.DataFrame", PersistableParamsT]):
    """A manifest (pandas DataFrame) of files, committed with the files it points at.

    Subclass it, declare :attr:`filepath_columns` and :attr:`metadata_columns`, and
    return the manifest from ``_generate_payload`` with paths (or fsspec URLs) of
    existing files; it is typically the fan-in over many samples::

        class CellDataset(DatasetPersistable[CellDatasetParams]):
            filepath_columns = ["image_path"]
            metadata_columns = ["cell_id"]

            def _generate_payload(self, **untracked: Any) -> pd.DataFrame:
                return pd.DataFrame(...)

        ds = CellDataset("s3://lab/cache", CellDatasetParams("2026.12"), {"cells": cells})

    Before anything is written every declared file is checked (a missing column or
    file names the row and the column); the files are copied into the artifact once
    per distinct content, and :attr:`payload` is the manifest with paths pointing into
    the artifact (local paths, or URLs on an object store). The files of the rows that
    came from one sample (one row, or the rows sharing a :attr:`sample_column` value)
    are linked: each file's entry in :attr:`files` lists them (``associates``), and
    :meth:`associates` follows the link from a row.
    """

    #: Columns holding paths or URLs of files to copy into the artifact.
    filepath_columns: ClassVar[Sequence[str]] = ()
    #: Columns kept beside each file in ``files.parquet`` (they must exist).
    metadata_columns: ClassVar[Sequence[str]] = ()
    #: Column naming the sample each row came from (None: every row is its own sample).
    sample_column: ClassVar[str | None] = None

    def __init__(
        self,
        data_dir: StoreLike,
        params: PersistableParamsT,
        tracked_persistable_dependencies: Dependencies | None = None,
        *,
        source_storage_options: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if "payload_io" not in kwargs:
            options = source_storage_options
            if options is None:
                options = kwargs.get("storage_options")
            kwargs["payload_io"] = ManifestFileIO(
                self.filepath_columns,
                self.metadata_columns,
                sample_column=self.sample_column,
                storage_options=options,
                owner=type(self).__name__,
            )
        super().__init__(data_dir, params, tracked_persistable_dependencies, **kwargs)

    def _generate(
        self, untracked_payload_params: dict[str, Any], *, persist: bool, replace: bool
    ) -> None:
        """Generate and persist, then let :attr:`payload` load the committed manifest.

        The generated DataFrame points at the source files; once committed, the payload
        is the manifest whose paths point into the artifact (the sources may go).
        """
        super()._generate(untracked_payload_params, persist=persist, replace=replace)
        if persist:
            self.reset_payload()

    @property
    def files(self) -> pd.DataFrame:
        """The per-file table: row, column, path in the artifact, source, size, checksum, metadata."""
        import io

        pandas_module: Any = __import__("pandas")
        data = self.store.read_bytes(self.artifact.path(f"{self.payload_file}/files.parquet"))
        frame: pd.DataFrame = pandas_module.read_parquet(io.BytesIO(data), engine="pyarrow")
        return frame

    def linked_rows(self, row: int) -> list[int]:
        """Positions of the manifest rows that came from the same sample as ``row``."""
        return _associates.linked_rows(self.payload, row, self.sample_column)

    def associates(self, row: int) -> dict[str, list[str]]:
        """The files of ``row``'s sample by file column, as paths or URLs for this store."""
        return _associates.associates(self.payload, row, self.sample_column, self.filepath_columns)
