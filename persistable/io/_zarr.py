"""Large arrays as zarr v3 folders: loads lazily (a ``zarr.Array``, or a ``dask.array`` on request).

A dask array is written chunk by chunk (``dask.array.store`` into the zarr array), so an
array larger than memory never has to fit in it. Loading opens the committed folder in
place: a local folder on local stores, the object-store prefix through fsspec on remote
ones. Chunks are read on access, each checked against the size and checksum that
``metadata.json`` records (``io/_zarr_checked.py``), so an array whose artifact was
replaced or deleted since it was opened raises instead of mixing two artifacts.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from persistable.exceptions import PayloadSerializationError
from persistable.io._folder import FolderFileIO, FolderLocation
from persistable.io._optional import require

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["ZarrFileIO"]


def _is_dask(value: Any) -> bool:
    return type(value).__module__.startswith("dask.") and hasattr(value, "compute")


class ZarrFileIO(FolderFileIO[Any]):
    """A numpy or dask array as a zarr v3 array folder (needs ``persistable[zarr]``).

    Parameters
    ----------
    chunks
        Chunk shape of the zarr array; default: the dask array's chunks (regular ones),
        else zarr's own choice.
    as_dask
        Load as a ``dask.array`` (needs ``persistable[dask]``) instead of a ``zarr.Array``.
    compressors
        zarr v3 compressors (``"auto"``: zarr's default, zstd).
    dimension_names
        Names of the dimensions, stored in ``zarr.json`` (e.g. ``("c", "z", "y", "x")``).
    """

    name: ClassVar[str] = "zarr"
    suffix: ClassVar[str] = ".zarr"

    def __init__(
        self,
        chunks: tuple[int, ...] | None = None,
        *,
        as_dask: bool = False,
        compressors: Any = "auto",
        dimension_names: tuple[str, ...] | None = None,
    ) -> None:
        self.chunks = chunks
        self.as_dask = as_dask
        self.compressors = compressors
        self.dimension_names = dimension_names

    def check(self, payload: Any) -> None:
        np = require("numpy", "zarr", "ZarrFileIO")
        if not (isinstance(payload, np.ndarray) or _is_dask(payload)):
            raise PayloadSerializationError(
                f"ZarrFileIO expected a numpy or dask array but the payload is a "
                f"{type(payload).__module__}.{type(payload).__qualname__}; use PickleFileIO "
                "for other objects."
            )
        dtype = np.dtype(payload.dtype)
        if dtype.kind not in "biufcmM" or isinstance(payload, np.ma.MaskedArray):
            raise PayloadSerializationError(
                f"ZarrFileIO cannot store dtype {dtype} so that it reads back the same; use "
                "NpyFileIO for str arrays or PickleFileIO for object arrays."
            )
        if self.dimension_names is not None and len(self.dimension_names) != payload.ndim:
            raise PayloadSerializationError(
                f"ZarrFileIO got {len(self.dimension_names)} dimension_names for an array of "
                f"{payload.ndim} dimensions (shape {tuple(payload.shape)})."
            )

    def _chunks(self, payload: Any) -> Any:
        if self.chunks is not None:
            return tuple(self.chunks)
        if _is_dask(payload) and all(len(set(sizes[:-1])) <= 1 for sizes in payload.chunks):
            return tuple(sizes[0] if sizes else 1 for sizes in payload.chunks)
        return "auto"

    def save_folder(self, payload: Any, folder: Path) -> None:
        self.check(payload)
        zarr = require("zarr", "zarr", "ZarrFileIO")
        store = zarr.storage.LocalStore(folder)
        chunks = self._chunks(payload)
        if 0 in payload.shape:
            chunks = "auto"
        array = zarr.create_array(
            store,
            shape=payload.shape,
            dtype=payload.dtype,
            chunks=chunks,
            compressors=self.compressors,
            dimension_names=self.dimension_names,
        )
        if _is_dask(payload):
            dask_array = require("dask.array", "dask", "ZarrFileIO")
            if chunks != "auto" and tuple(chunks) != tuple(array.chunks):
                payload = payload.rechunk(array.chunks)
            # Each dask chunk lands in whole zarr chunks: no lock, chunks written in parallel.
            aligned = all(
                all(size % chunk == 0 for size in sizes[:-1])
                for sizes, chunk in zip(payload.chunks, array.chunks, strict=True)
            )
            dask_array.store(payload, array, lock=not aligned)
        elif payload.size:
            array[...] = payload

    def load_folder(self, location: FolderLocation) -> Any:
        zarr = require("zarr", "zarr", "ZarrFileIO")
        if location.local is not None:
            store: Any = zarr.storage.LocalStore(location.local, read_only=True)
        else:
            fs = location.fs
            # The store's filesystem runs on fsspec's own event loop; zarr runs another.
            # Wrapped, its blocking methods run in threads of zarr's loop.
            wrapper = require("fsspec.implementations.asyn_wrapper", "s3", "ZarrFileIO")
            wrapped = wrapper.AsyncFileSystemWrapper(fs, asynchronous=True)
            store = zarr.storage.FsspecStore(wrapped, path=location.url, read_only=True)
        if not location.temporary:
            # Chunks are read later, maybe after the artifact was replaced: each read is
            # checked against this artifact's records (a mix is never returned).
            from persistable.io._zarr_checked import CheckedZarrStore

            where = str(location.local) if location.local is not None else str(location.url)
            store = CheckedZarrStore(
                store, location.files, where, location.ref or where, location.changed
            )
        array = zarr.open_array(store=store, mode="r")
        if location.temporary:
            loaded: NDArray[Any] = array[...]
            return loaded
        if self.as_dask:
            dask_array = require("dask.array", "dask", "ZarrFileIO")
            return dask_array.from_zarr(array)
        return array

    def __repr__(self) -> str:
        return f"ZarrFileIO(chunks={self.chunks!r}, as_dask={self.as_dask!r})"
