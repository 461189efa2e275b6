"""pandas DataFrames as Parquet (pyarrow): dtypes, index and column names round-trip."""

from __future__ import annotations

from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, cast

from persistable.exceptions import PayloadSerializationError
from persistable.io._base import FileIO
from persistable.io._optional import TellingWriter, require, seekable_copy

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ParquetFileIO"]


class ParquetFileIO(FileIO["pd.DataFrame"]):
    """A pandas DataFrame as one Parquet file (needs ``persistable[pandas]``).

    Parameters
    ----------
    compression
        Parquet compression codec (``"snappy"``, ``"zstd"``, ``None``...).
    """

    name: ClassVar[str] = "parquet"
    suffix: ClassVar[str] = ".parquet"

    def __init__(self, compression: str | None = "snappy") -> None:
        self.compression = compression

    def check(self, payload: Any) -> None:
        pandas = require("pandas", "pandas", "ParquetFileIO")
        if not isinstance(payload, pandas.DataFrame):
            raise PayloadSerializationError(
                f"ParquetFileIO expected a pandas.DataFrame but the payload is a "
                f"{type(payload).__module__}.{type(payload).__qualname__}; use CsvFileIO for "
                "text tables or PickleFileIO for other objects."
            )
        names = [name for name in payload.columns if not isinstance(name, str)]
        if names:
            raise PayloadSerializationError(
                f"ParquetFileIO needs str column names (got {names[0]!r} that is a "
                f"{type(names[0]).__name__}); rename the columns, e.g. df.columns = "
                "df.columns.map(str)."
            )

    def save(self, payload: pd.DataFrame, stream: IO[bytes]) -> None:
        self.check(payload)
        require("pyarrow", "pandas", "ParquetFileIO")
        cast(Any, payload).to_parquet(
            TellingWriter(stream), engine="pyarrow", compression=self.compression
        )

    def load(self, stream: IO[bytes]) -> pd.DataFrame:
        pandas = require("pandas", "pandas", "ParquetFileIO")
        frame: pd.DataFrame = pandas.read_parquet(seekable_copy(stream), engine="pyarrow")
        return frame

    def load_path(self, path: Path) -> pd.DataFrame:
        pandas = require("pandas", "pandas", "ParquetFileIO")
        frame: pd.DataFrame = pandas.read_parquet(path, engine="pyarrow")
        return frame

    def __repr__(self) -> str:
        return f"ParquetFileIO(compression={self.compression!r})"
