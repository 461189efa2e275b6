"""``ManifestFileIO``: a pandas manifest and the files it points at, committed as one folder payload.

The folder (``payload.dataset/``) holds::

    manifest.parquet   the DataFrame, file paths rewritten relative to this folder
    files.parquet      one row per (row, column) file: path, source, size, checksum, metadata,
                       its sample and the sample's other files (``associates``)
    dataset.json       the declared columns, so that loading needs no configuration
    files/<xx>/<checksum>/<name>   each distinct file once (deduplicated by checksum)

Every declared file is checked before anything is written: a missing column, a cell
that is not a path, or a file that does not exist or cannot be read is an error naming
the row and the column. Loading resolves the paths for the store the artifact is in:
local paths on a local store, URLs on an object store.
"""

from __future__ import annotations

import json
import os
import posixpath
from collections.abc import Sequence
from pathlib import Path, PurePath
from typing import TYPE_CHECKING, Any, ClassVar

from persistable._hashing import BULK_ALGORITHM, BulkHasher
from persistable._warn import warn_at_caller
from persistable.datasets._associates import ASSOCIATES, SAMPLE, link, sample_keys
from persistable.exceptions import ManifestError, PayloadSerializationError, PersistableWarning
from persistable.io._folder import FolderFileIO, FolderLocation
from persistable.io._optional import require

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["ManifestFileIO"]

_CHUNK = 1 << 22
#: Remote files up to this size are fetched whole, concurrently.
_SMALL = 16 << 20
#: Concurrent requests for remote files.
_WORKERS = 8
MANIFEST_FILE = "manifest.parquet"
FILES_TABLE = "files.parquet"
DATASET_FILE = "dataset.json"
#: Columns of ``files.parquet`` that a metadata column cannot be named.
_RESERVED = ("row", "column", "path", "source", "size", BULK_ALGORITHM, SAMPLE, ASSOCIATES)


def _is_url(text: str) -> bool:
    scheme, sep, _ = text.partition("://")
    return bool(sep) and scheme.isidentifier() and len(scheme) > 1


def _size_at_most(found: int | Exception | None, limit: int) -> bool:
    return isinstance(found, int) and found <= limit


class ManifestFileIO(FolderFileIO["pd.DataFrame"]):
    """A manifest DataFrame whose ``filepath_columns`` are copied into the artifact (needs ``persistable[pandas]``).

    Parameters
    ----------
    filepath_columns
        Columns whose cells are local paths or fsspec URLs of files (None/NaN for none).
    metadata_columns
        Columns kept beside each file in ``files.parquet``; they must exist.
    sample_column
        Column naming the sample each row came from: the files of rows with one value
        are linked (``associates``). None: each row is its own sample.
    storage_options
        fsspec options for URLs in the manifest (e.g. an S3 endpoint).
    owner
        Named in error messages (the dataset's class).
    """

    name: ClassVar[str] = "manifest"
    suffix: ClassVar[str] = ".dataset"

    def __init__(
        self,
        filepath_columns: Sequence[str] = (),
        metadata_columns: Sequence[str] = (),
        *,
        sample_column: str | None = None,
        storage_options: dict[str, Any] | None = None,
        owner: str = "the dataset",
    ) -> None:
        self.filepath_columns = list(filepath_columns)
        self.metadata_columns = list(metadata_columns)
        reserved = [column for column in self.metadata_columns if column in _RESERVED]
        if reserved:
            raise ManifestError(
                f"The metadata column {reserved[0]!r} of {owner} has the name of a column of "
                f"files.parquet ({', '.join(_RESERVED)}); rename it in the manifest."
            )
        self.sample_column = sample_column
        self.storage_options = dict(storage_options or {})
        self.owner = owner
        self._probed: dict[str, int | Exception | None] = {}

    # -- checks -------------------------------------------------------------------

    def _sources(self, payload: pd.DataFrame) -> list[tuple[int, str, str]]:
        """``(row position, column, path or URL)`` of every declared file, checked."""
        pandas = require("pandas", "pandas", "ManifestFileIO")
        if not isinstance(payload, pandas.DataFrame):
            raise PayloadSerializationError(
                f"{self.owner} must return a pandas.DataFrame (a manifest) but returned a "
                f"{type(payload).__module__}.{type(payload).__qualname__}."
            )
        declared = [*self.filepath_columns, *self.metadata_columns]
        missing = [column for column in declared if column not in payload.columns]
        if missing:
            raise ManifestError(
                f"The manifest of {self.owner} lacks the declared column {missing[0]!r} "
                f"(it has {list(map(str, payload.columns))}); add it or remove it from "
                "filepath_columns / metadata_columns."
            )
        sample_keys(payload, self.sample_column, self.owner)
        sources: list[tuple[int, str, str]] = []
        for column in self.filepath_columns:
            for row, value in enumerate(payload[column].tolist()):
                if value is None or (isinstance(value, float) and value != value):
                    continue
                if not isinstance(value, (str, PurePath)) or str(value) == "":
                    raise ManifestError(
                        f"Row {row} of the manifest of {self.owner}, column {column!r}, holds "
                        f"{value!r} ({type(value).__name__}); a file path or URL (or None) was "
                        "expected."
                    )
                sources.append((row, column, os.fspath(value)))
        return sources

    def _fs(self, url: str) -> tuple[Any, str]:
        fsspec = require("fsspec", "fsspec", "ManifestFileIO")
        fs, path = fsspec.core.url_to_fs(url, **self.storage_options)
        return fs, path

    def _probe_urls(self, urls: list[str]) -> dict[str, int | Exception | None]:
        """Size of each URL's file (None: absent or not a file), probed concurrently."""
        import concurrent.futures

        def probe(url: str) -> int | Exception | None:
            fs, path = self._fs(url)
            try:
                info = fs.info(path)
            except FileNotFoundError:
                return None
            except (OSError, ValueError) as error:
                return error
            return int(info.get("size") or 0) if info.get("type") == "file" else None

        with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
            return dict(zip(urls, pool.map(probe, urls), strict=True))

    def check(self, payload: Any) -> None:
        sources = self._sources(payload)
        probed = self._probe_urls(sorted({source for _, _, source in sources if _is_url(source)}))
        self._probed = probed  # reused by save_folder, which Persistable calls right after
        for row, column, source in sources:
            where = f"Row {row} of the manifest of {self.owner}, column {column!r},"
            if _is_url(source):
                found = probed[source]
                if isinstance(found, Exception):
                    raise ManifestError(
                        f"{where} points at {source!r}, which cannot be read ({found}); "
                        "nothing was written."
                    )
                if found is None:
                    raise ManifestError(
                        f"{where} points at {source!r}, which does not exist (or is not a "
                        "file); nothing was written."
                    )
            elif not Path(source).is_file():
                raise ManifestError(
                    f"{where} points at {source!r}, which does not exist (or is not a file); "
                    "nothing was written."
                )
            elif not os.access(source, os.R_OK):
                raise ManifestError(
                    f"{where} points at {source!r}, which cannot be read (permission denied); "
                    "nothing was written."
                )

    # -- writing ------------------------------------------------------------------

    def _copy_in(self, source: str, scratch: Path) -> BulkHasher:
        hasher = BulkHasher()
        opened: Any
        if _is_url(source):
            fs, path = self._fs(source)
            opened = fs.open(path, "rb")
        else:
            opened = Path(source).open("rb")  # noqa: SIM115 - closed by the with below
        with opened as reader, scratch.open("wb") as writer:
            while chunk := reader.read(_CHUNK):
                hasher.update(chunk)
                writer.write(chunk)
        return hasher

    def _download_small(self, urls: list[str]) -> dict[str, bytes]:
        """The content of small remote files, fetched concurrently (one request each)."""
        import concurrent.futures

        def fetch(url: str) -> bytes:
            fs, path = self._fs(url)
            data: bytes = fs.cat_file(path)
            return data

        with concurrent.futures.ThreadPoolExecutor(_WORKERS) as pool:
            return dict(zip(urls, pool.map(fetch, urls), strict=True))

    def save_folder(self, payload: pd.DataFrame, folder: Path) -> None:
        # check() ran before the artifact was begun (Persistable calls it first).
        pandas = require("pandas", "pandas", "ManifestFileIO")
        sources = self._sources(payload)
        urls = sorted({source for _, _, source in sources if _is_url(source)})
        probed = getattr(self, "_probed", {})
        sizes = probed if set(urls) <= set(probed) else self._probe_urls(urls)
        self._probed = {}
        small = [url for url in urls if _size_at_most(sizes[url], _SMALL)]
        fetched = self._download_small(small)
        manifest = payload.copy()
        stored: dict[str, str] = {}  # checksum -> relative path of the one copy
        by_source: dict[str, tuple[str, int, str]] = {}  # source -> (relative, size, checksum)
        rows: list[dict[str, Any]] = []
        scratch = folder / ".incoming"
        for row, column, source in sources:
            known = by_source.get(source)
            if known is None:
                try:
                    if source in fetched:
                        hasher = BulkHasher()
                        hasher.update(fetched[source])
                        scratch.write_bytes(fetched.pop(source))
                    else:
                        hasher = self._copy_in(source, scratch)
                except OSError as error:
                    raise ManifestError(
                        f"Row {row} of the manifest of {self.owner}, column {column!r}: "
                        f"{source!r} could not be read ({error})."
                    ) from error
                digest = hasher.hexdigest()
                relative = stored.get(digest)
                if relative is None:
                    name = posixpath.basename(source.replace("\\", "/").rstrip("/")) or "file"
                    if name.startswith("."):
                        name = f"_{name}"  # hidden names are not artifact files
                    relative = f"files/{digest[:2]}/{digest}/{name}"
                    target = folder / relative
                    target.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(scratch, target)
                    stored[digest] = relative
                known = by_source[source] = (relative, hasher.size, digest)
            relative, size, digest = known
            manifest.iat[row, manifest.columns.get_loc(column)] = relative
            record: dict[str, Any] = {
                "row": row,
                "column": column,
                "path": relative,
                "source": source,
                "size": size,
                BULK_ALGORITHM: digest,
            }
            for meta in self.metadata_columns:
                record[meta] = payload[meta].iloc[row]
            rows.append(record)
        if scratch.exists():
            scratch.unlink()
        link(rows, sample_keys(payload, self.sample_column, self.owner))
        manifest.to_parquet(folder / MANIFEST_FILE, engine="pyarrow")
        columns = [
            "row",
            "column",
            "path",
            "source",
            "size",
            BULK_ALGORITHM,
            *self.metadata_columns,
            SAMPLE,
            ASSOCIATES,
        ]
        pandas.DataFrame(rows, columns=columns).to_parquet(folder / FILES_TABLE, engine="pyarrow")
        description = {
            "filepath_columns": self.filepath_columns,
            "metadata_columns": self.metadata_columns,
            "sample_column": self.sample_column,
            "files": len(stored),
            "bytes": sum(size for _, size, _ in by_source.values()),
        }
        (folder / DATASET_FILE).write_text(json.dumps(description, indent=2) + "\n")

    # -- loading ------------------------------------------------------------------

    def load_folder(self, location: FolderLocation) -> pd.DataFrame:
        pandas = require("pandas", "pandas", "ManifestFileIO")
        if location.temporary:
            raise PayloadSerializationError(
                "ManifestFileIO loads from local folders and fsspec object stores; this store "
                "is neither, so the files would have no lasting path."
            )
        if location.local is not None:
            base: str = str(location.local)
            manifest = pandas.read_parquet(location.local / MANIFEST_FILE, engine="pyarrow")
            description = json.loads((location.local / DATASET_FILE).read_text())
            join = os.path.join
        else:
            fs, url = location.fs, str(location.url)
            protocol = fs.protocol if isinstance(fs.protocol, str) else fs.protocol[0]
            base = f"{protocol}://{url}"
            with fs.open(f"{url}/{MANIFEST_FILE}", "rb") as stream:
                manifest = pandas.read_parquet(stream, engine="pyarrow")
            description = json.loads(fs.cat_file(f"{url}/{DATASET_FILE}"))
            join = posixpath.join
        self._check_declared(description)
        for column in description["filepath_columns"]:
            manifest[column] = [
                value if value is None or value != value else join(base, value)
                for value in manifest[column].tolist()
            ]
        frame: pd.DataFrame = manifest
        return frame

    def _check_declared(self, description: dict[str, Any]) -> None:
        """Warn when the class now declares other columns than the artifact was made with.

        The declared columns are not in the key: without this, a column added to
        ``filepath_columns`` would load from the old artifact with its files never copied in.
        """
        declared = (self.filepath_columns, self.metadata_columns, self.sample_column)
        if declared == ([], [], None):
            return  # built from the registry name (sync, the CLI): it follows the artifact
        recorded = (
            list(description.get("filepath_columns", [])),
            list(description.get("metadata_columns", [])),
            description.get("sample_column"),
        )
        if recorded != declared:
            warn_at_caller(
                f"The dataset of {self.owner} was made with filepath_columns={recorded[0]!r}, "
                f"metadata_columns={recorded[1]!r}, sample_column={recorded[2]!r}, but the "
                f"class now declares {declared[0]!r}, {declared[1]!r}, {declared[2]!r}; it was "
                "loaded as it was made (files of new columns are not in it). Change the class's "
                "version (it is in the key) to make the dataset again.",
                PersistableWarning,
            )

    def __repr__(self) -> str:
        return (
            f"ManifestFileIO(filepath_columns={self.filepath_columns!r}, "
            f"metadata_columns={self.metadata_columns!r}, "
            f"sample_column={self.sample_column!r})"
        )
