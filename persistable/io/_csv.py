"""pandas DataFrames as CSV text: readable anywhere, but only str, int, float and bool columns keep their type."""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any, ClassVar

from persistable.exceptions import PayloadSerializationError
from persistable.io._base import FileIO
from persistable.io._optional import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["CsvFileIO"]


class CsvFileIO(FileIO["pd.DataFrame"]):
    """A pandas DataFrame as a UTF-8 CSV file without its index (needs ``persistable[pandas]``).

    Loading infers the column types again, so only str, int, float and bool columns
    come back as they were; a column of another dtype (datetimes, categories, objects)
    is refused when saving, with a pointer to ParquetFileIO, rather than silently changed.
    Empty strings and missing values both read back as missing: refuse neither, but
    prefer ParquetFileIO for such tables.
    """

    name: ClassVar[str] = "csv"
    suffix: ClassVar[str] = ".csv"

    def check(self, payload: Any) -> None:
        pandas = require("pandas", "pandas", "CsvFileIO")
        if not isinstance(payload, pandas.DataFrame):
            raise PayloadSerializationError(
                f"CsvFileIO expected a pandas.DataFrame but the payload is a "
                f"{type(payload).__module__}.{type(payload).__qualname__}; use PickleFileIO "
                "for other objects."
            )
        api = pandas.api.types
        for column in payload.columns:
            dtype = payload[column].dtype
            plain = (
                api.is_string_dtype(dtype)
                or api.is_bool_dtype(dtype)
                or api.is_integer_dtype(dtype)
                or api.is_float_dtype(dtype)
            ) and not isinstance(dtype, pandas.CategoricalDtype)
            if not plain:
                raise PayloadSerializationError(
                    f"CsvFileIO cannot keep the {dtype} column {column!r} (CSV stores text; it "
                    "would read back as another type); use ParquetFileIO for this table."
                )

    def save(self, payload: pd.DataFrame, stream: IO[bytes]) -> None:
        self.check(payload)
        text = io.TextIOWrapper(stream, encoding="utf-8", newline="", write_through=True)
        try:
            payload.to_csv(text, index=False)
        finally:
            text.detach()  # the stream belongs to the caller

    def load(self, stream: IO[bytes]) -> pd.DataFrame:
        pandas = require("pandas", "pandas", "CsvFileIO")
        frame: pd.DataFrame = pandas.read_csv(stream, encoding="utf-8")
        return frame
