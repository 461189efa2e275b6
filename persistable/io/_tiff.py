"""Arrays as OME-TIFF (tifffile): named dimensions, channel names and physical pixel sizes in the OME-XML.

numpy arrays are written in one call; dask arrays plane by plane (each ``YX`` plane is
computed when tifffile asks for it), so an image larger than memory is never held whole.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from persistable.exceptions import PayloadSerializationError
from persistable.io._base import FileIO
from persistable.io._optional import require, seekable_copy, spooled_writer

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["OmeTiffFileIO"]

_AXES = "TCZYXS"
#: numpy dtype kinds and sizes that OME pixel types can describe.
_OME_TYPES = {"b1", "i1", "i2", "i4", "u1", "u2", "u4", "f4", "f8", "c8", "c16"}


def _is_dask(value: Any) -> bool:
    module = type(value).__module__
    return module.startswith("dask.") and hasattr(value, "compute") and hasattr(value, "chunks")


class OmeTiffFileIO(FileIO["NDArray[Any]"]):
    """One image array as an OME-TIFF file (needs ``persistable[tiff]``).

    Parameters
    ----------
    dims
        The array's dimensions, in order, from ``T``, ``C``, ``Z``, ``Y``, ``X`` (and ``S``
        for RGB samples), ending with ``YX`` or ``YXS``: e.g. ``"CZYX"``.
    channel_names
        One name per ``C`` index, written as the OME channels' names.
    physical_pixel_sizes
        Sizes of a pixel along ``Z``, ``Y`` and/or ``X``, e.g. ``{"Z": 0.29, "Y": 0.108, "X": 0.108}``.
    unit
        The unit of ``physical_pixel_sizes`` (default micrometre).
    compression
        A tifffile compression (``"zlib"``, ``"zstd"``...), default none.

    Loading gives a numpy array with exactly ``dims`` (size-1 dimensions are kept).
    """

    name: ClassVar[str] = "ome-tiff"
    seeks_on_save: ClassVar[bool] = True
    suffix: ClassVar[str] = ".ome.tiff"

    def __init__(
        self,
        dims: str | None = None,
        channel_names: Sequence[str] | None = None,
        physical_pixel_sizes: Mapping[str, float] | None = None,
        unit: str = "µm",
        compression: str | None = None,
    ) -> None:
        if dims is not None and (
            len(set(dims)) != len(dims)
            or any(axis not in _AXES for axis in dims)
            or not (dims.endswith("YX") or dims.endswith("YXS"))
            or "".join(axis for axis in _AXES if axis in dims) != dims
        ):
            raise ValueError(
                f"OmeTiffFileIO dims must be distinct letters of {_AXES!r} in that order, "
                f"ending with 'YX' or 'YXS' (got {dims!r}); e.g. 'CZYX' or 'TCZYX'."
            )
        if channel_names is not None and (dims is None or "C" not in dims):
            raise ValueError(
                f"OmeTiffFileIO got channel_names but dims {dims!r} has no 'C' dimension; "
                "pass dims, e.g. dims='CZYX'."
            )
        sizes = dict(physical_pixel_sizes or {})
        unknown = sorted(set(sizes) - {"Z", "Y", "X"})
        if unknown:
            raise ValueError(
                f"OmeTiffFileIO physical_pixel_sizes takes 'Z', 'Y' and 'X' (got {unknown[0]!r})."
            )
        self.dims = dims
        self.channel_names = None if channel_names is None else [str(n) for n in channel_names]
        self.physical_pixel_sizes = {axis: float(size) for axis, size in sizes.items()}
        self.unit = unit
        self.compression = compression

    def check(self, payload: Any) -> None:
        np = require("numpy", "tiff", "OmeTiffFileIO")
        if not (isinstance(payload, np.ndarray) or _is_dask(payload)):
            raise PayloadSerializationError(
                f"OmeTiffFileIO expected a numpy or dask array but the payload is a "
                f"{type(payload).__module__}.{type(payload).__qualname__}; use PickleFileIO "
                "for other objects."
            )
        if self.dims is None:
            if not 2 <= payload.ndim <= 5:
                raise PayloadSerializationError(
                    f"OmeTiffFileIO got an array of {payload.ndim} dimensions (shape "
                    f"{tuple(payload.shape)}); OME-TIFF holds 2 to 5 (TCZYX): pass dims, or use "
                    "ZarrFileIO for other arrays."
                )
        elif payload.ndim != len(self.dims):
            raise PayloadSerializationError(
                f"OmeTiffFileIO(dims={self.dims!r}) got an array of {payload.ndim} dimensions "
                f"(shape {tuple(payload.shape)}); pass dims with one letter per dimension, "
                f"e.g. dims={_suggest_dims(payload.ndim)!r}."
            )
        dtype = np.dtype(payload.dtype)
        if f"{dtype.kind}{dtype.itemsize}" not in _OME_TYPES:
            raise PayloadSerializationError(
                f"OmeTiffFileIO cannot store dtype {dtype} (OME pixel types are bool, int8-32, "
                "uint8-32, float32/64 and complex64/128); convert it (e.g. .astype('float32')) "
                "or use ZarrFileIO or NpyFileIO, which keep any numeric dtype."
            )
        if self.channel_names is not None and self.dims is not None:
            channels = payload.shape[self.dims.index("C")]
            if channels != len(self.channel_names):
                raise PayloadSerializationError(
                    f"OmeTiffFileIO got {len(self.channel_names)} channel_names for an array "
                    f"with {channels} channels (dims {self.dims!r}, shape {tuple(payload.shape)})."
                )

    def dims_for(self, ndim: int) -> str:
        """The dims written for an array of ``ndim`` dimensions (``dims``, or TCZYX's last ``ndim``)."""
        return self.dims if self.dims is not None else _suggest_dims(ndim)

    def metadata(self, ndim: int | None = None) -> dict[str, Any]:
        """The tifffile ``metadata`` dict written with every image (axes, channels, pixel sizes)."""
        dims = self.dims_for(ndim if ndim is not None else len(self.dims or "ZYX"))
        metadata: dict[str, Any] = {"axes": dims}
        if self.channel_names is not None:
            metadata["Channel"] = {"Name": list(self.channel_names)}
        for axis, size in sorted(self.physical_pixel_sizes.items()):
            metadata[f"PhysicalSize{axis}"] = size
            metadata[f"PhysicalSize{axis}Unit"] = self.unit
        return metadata

    def _options(self, payload: Any) -> dict[str, Any]:
        """tifffile's ``imwrite`` options for ``payload`` (an array or a dask array)."""
        nbytes = math.prod(int(extent) for extent in payload.shape) * payload.dtype.itemsize
        return {
            "ome": True,
            "metadata": self.metadata(payload.ndim),
            # BigTIFF when the pixels alone come near the 4 GiB limit of classic TIFF.
            "bigtiff": nbytes > 2**32 - 2**25,
            "compression": self.compression,
            "photometric": "rgb" if self.dims_for(payload.ndim).endswith("S") else "minisblack",
        }

    def save(self, payload: NDArray[Any], stream: IO[bytes]) -> None:
        self.check(payload)
        tifffile = require("tifffile", "tiff", "OmeTiffFileIO")
        np = require("numpy", "tiff", "OmeTiffFileIO")
        shape = tuple(int(extent) for extent in payload.shape)
        dtype = np.dtype(payload.dtype)
        nbytes = math.prod(shape) * dtype.itemsize
        options = self._options(payload)
        with spooled_writer(stream, nbytes + (1 << 16)) as scratch:
            if _is_dask(payload):
                tifffile.imwrite(
                    scratch,
                    _planes(payload, self.dims_for(payload.ndim)),
                    shape=shape,
                    dtype=dtype,
                    **options,
                )
            else:
                tifffile.imwrite(scratch, payload, **options)

    def save_file(self, payload: NDArray[Any], stream: IO[bytes]) -> dict[str, Any] | None:
        """:meth:`save`; an uncompressed numpy array is written and hashed in one pass (see :mod:`._tiff_hole`)."""
        self.check(payload)
        if self.compression is None and not _is_dask(payload):
            from persistable.io._tiff_hole import write_hashed

            tifffile = require("tifffile", "tiff", "OmeTiffFileIO")
            record = write_hashed(tifffile, payload, stream, self._options(payload))
            if record is not None:
                return record
        self.save(payload, stream)
        return None

    def load(self, stream: IO[bytes]) -> NDArray[Any]:
        return self._read(seekable_copy(stream))

    def load_path(self, path: Path) -> NDArray[Any]:
        return self._read(path)

    def _read(self, source: Any) -> NDArray[Any]:
        tifffile = require("tifffile", "tiff", "OmeTiffFileIO")
        with tifffile.TiffFile(source) as tiff:
            series = tiff.series[0]
            if self.dims is None:  # as the file says (tifffile leaves out size-1 axes)
                loaded: NDArray[Any] = series.asarray()
                return loaded
            axes = series.get_axes(False)
            array = series.asarray().reshape(series.get_shape(False))
        keep = [index for index, axis in enumerate(axes) if axis in self.dims]
        drop = tuple(index for index, axis in enumerate(axes) if axis not in self.dims)
        if any(array.shape[index] != 1 for index in drop):
            raise PayloadSerializationError(
                f"The OME-TIFF has axes {axes!r} with shape {array.shape}, which do not fit "
                f"OmeTiffFileIO(dims={self.dims!r}); load it with the dims it was written with."
            )
        array = array.squeeze(axis=drop) if drop else array
        found = "".join(axes[index] for index in keep)
        if found != self.dims:
            array = array.transpose([found.index(axis) for axis in self.dims])
        result: NDArray[Any] = array
        return result

    def __repr__(self) -> str:
        return (
            f"OmeTiffFileIO(dims={self.dims!r}, channel_names={self.channel_names!r}, "
            f"physical_pixel_sizes={self.physical_pixel_sizes!r})"
        )


def _suggest_dims(ndim: int) -> str:
    return {2: "YX", 3: "ZYX", 4: "CZYX", 5: "TCZYX"}.get(ndim, "TCZYX")


def _planes(array: Any, dims: str) -> Iterator[Any]:
    """The ``YX`` (or ``YXS``) planes of a dask array in storage order, computed one at a time."""
    plane_dims = 3 if dims.endswith("S") else 2
    leading = array.shape[: array.ndim - plane_dims]
    for index in itertools.product(*(range(extent) for extent in leading)):
        yield array[index].compute()
