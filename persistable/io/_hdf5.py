"""numpy (and dask) arrays as HDF5 datasets (h5py): one array, or a mapping of names to arrays.

A dask array is written block by block into its dataset (``dask.array.store``), so it
is never held whole in memory; loading reads the datasets into numpy arrays.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from persistable.exceptions import PayloadSerializationError
from persistable.io._base import FileIO
from persistable.io._optional import require, seekable_copy, spooled_writer

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["Hdf5FileIO"]

#: dtype kinds HDF5 stores and h5py reads back as they were.
_KINDS = "biufc"
_KIND_ATTRIBUTE = "persistable_payload"


def _is_dask(value: Any) -> bool:
    return type(value).__module__.startswith("dask.") and hasattr(value, "compute")


class Hdf5FileIO(FileIO[Any]):
    """One array, or a mapping of str names to arrays, as datasets of an HDF5 file (needs ``persistable[hdf5]``).

    Parameters
    ----------
    dataset
        The dataset name of a single-array payload.
    compression
        An h5py compression filter (``"gzip"``, ``"lzf"``) or None.

    A single array loads as a numpy array, a mapping as a dict of numpy arrays.
    """

    name: ClassVar[str] = "hdf5"
    seeks_on_save: ClassVar[bool] = True
    suffix: ClassVar[str] = ".h5"

    def __init__(self, dataset: str = "data", compression: str | None = None) -> None:
        self.dataset = dataset
        self.compression = compression

    def _arrays(self, payload: Any) -> tuple[str, dict[Any, Any]]:
        np = require("numpy", "hdf5", "Hdf5FileIO")
        if isinstance(payload, np.ndarray) or _is_dask(payload):
            return "array", {self.dataset: payload}
        if isinstance(payload, Mapping) and payload:
            return "mapping", dict(payload)
        raise PayloadSerializationError(
            f"Hdf5FileIO expected a numpy or dask array or a non-empty mapping of names to "
            f"arrays, but the payload is a {type(payload).__module__}."
            f"{type(payload).__qualname__}; use PickleFileIO for other objects."
        )

    def check(self, payload: Any) -> None:
        np = require("numpy", "hdf5", "Hdf5FileIO")
        _, arrays = self._arrays(payload)
        for name, array in arrays.items():
            if not isinstance(name, str) or not name or name.startswith("/"):
                raise PayloadSerializationError(
                    f"Hdf5FileIO dataset names must be non-empty str not starting with '/' "
                    f"(got {name!r})."
                )
            if not (isinstance(array, np.ndarray) or _is_dask(array)):
                raise PayloadSerializationError(
                    f"Hdf5FileIO got {type(array).__qualname__} for dataset {name!r}; every "
                    "value must be a numpy or dask array."
                )
            dtype = np.dtype(array.dtype)
            if dtype.kind not in _KINDS or isinstance(array, np.ma.MaskedArray):
                raise PayloadSerializationError(
                    f"Hdf5FileIO cannot store the {dtype} array {name!r} so that it reads back "
                    "the same (HDF5 keeps bool, integer, float and complex arrays); use "
                    "NpyFileIO or NpzFileIO, or convert the dtype."
                )

    def save(self, payload: Any, stream: IO[bytes]) -> None:
        self.check(payload)
        h5py = require("h5py", "hdf5", "Hdf5FileIO")
        kind, arrays = self._arrays(payload)
        size = sum(int(array.nbytes) for array in arrays.values()) + (1 << 20)
        with spooled_writer(stream, size) as scratch, h5py.File(scratch, "w") as file:
            file.attrs[_KIND_ATTRIBUTE] = kind
            for name, array in arrays.items():
                if _is_dask(array):
                    dask_array = require("dask.array", "dask", "Hdf5FileIO")
                    dataset = file.create_dataset(
                        name, shape=array.shape, dtype=array.dtype, compression=self.compression
                    )
                    dask_array.store(array, dataset, lock=True)
                else:
                    file.create_dataset(name, data=array, compression=self.compression)

    def load(self, stream: IO[bytes]) -> Any:
        return self._read(seekable_copy(stream))

    def load_path(self, path: Path) -> Any:
        return self._read(path)

    def _read(self, source: Any) -> Any:
        h5py = require("h5py", "hdf5", "Hdf5FileIO")
        np = require("numpy", "hdf5", "Hdf5FileIO")
        arrays: dict[str, NDArray[Any]] = {}
        with h5py.File(source, "r") as file:
            kind = file.attrs.get(_KIND_ATTRIBUTE, "mapping")

            def collect(name: str, item: Any) -> None:
                if isinstance(item, h5py.Dataset):
                    arrays[name] = np.asarray(item[()])

            file.visititems(collect)
        if kind == "array":
            return arrays[self.dataset] if self.dataset in arrays else next(iter(arrays.values()))
        return arrays

    def __repr__(self) -> str:
        return f"Hdf5FileIO(dataset={self.dataset!r}, compression={self.compression!r})"
