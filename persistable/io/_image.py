"""Images as PNG or JPEG (Pillow): 2-D grey, bool or 16-bit arrays and RGB(A) ``(Y, X, S)`` arrays.

Which file format is written follows the extension (:func:`image_file_io`). PNG is
lossless: every supported array comes back equal. JPEG is lossy and 8-bit only: it
comes back close, not equal, and is meant for previews.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar

from persistable.exceptions import PayloadSerializationError
from persistable.io._base import FileIO
from persistable.io._optional import require, seekable_copy

if TYPE_CHECKING:
    from numpy.typing import NDArray

__all__ = ["ImageFileIO", "JpegFileIO", "PngFileIO", "image_file_io"]


class ImageFileIO(FileIO["NDArray[Any]"]):
    """The shared part of the Pillow image FileIOs; use :class:`PngFileIO` or :class:`JpegFileIO`."""

    name: ClassVar[str] = "image"
    suffix: ClassVar[str] = ".png"
    #: Pillow's format name.
    format: ClassVar[str] = "PNG"
    #: (dtype, samples per pixel) pairs this format stores; samples 1 means a 2-D array.
    supported: ClassVar[frozenset[tuple[str, int]]] = frozenset()

    def check(self, payload: Any) -> None:
        np = require("numpy", "image", type(self).__name__)
        module = type(payload).__module__
        if not (isinstance(payload, np.ndarray) or module.startswith("dask.")):
            raise PayloadSerializationError(
                f"{type(self).__name__} expected a numpy or dask array but the payload is a "
                f"{module}.{type(payload).__qualname__}; use PickleFileIO for other objects."
            )
        samples = payload.shape[2] if payload.ndim == 3 else 1
        dtype = np.dtype(payload.dtype).name
        if payload.ndim not in (2, 3) or (dtype, samples) not in self.supported:
            kinds = ", ".join(
                f"{kind} {'(Y, X)' if count == 1 else f'(Y, X, {count})'}"
                for kind, count in sorted(self.supported)
            )
            raise PayloadSerializationError(
                f"{type(self).__name__} cannot store a {dtype} array of shape "
                f"{tuple(payload.shape)} (it stores {kinds}); convert it, or use "
                "OmeTiffFileIO for stacks and other dtypes."
            )

    def _save_options(self) -> dict[str, Any]:
        return {}

    def save(self, payload: NDArray[Any], stream: IO[bytes]) -> None:
        self.check(payload)
        np = require("numpy", "image", type(self).__name__)
        image_module = require("PIL.Image", "image", type(self).__name__)
        array = np.ascontiguousarray(payload.compute() if hasattr(payload, "compute") else payload)
        buffer = io.BytesIO()  # Pillow seeks back while writing some formats
        image_module.fromarray(array).save(buffer, format=self.format, **self._save_options())
        stream.write(buffer.getbuffer())

    def load(self, stream: IO[bytes]) -> NDArray[Any]:
        return self._read(seekable_copy(stream))

    def load_path(self, path: Path) -> NDArray[Any]:
        return self._read(path)

    def _read(self, source: Any) -> NDArray[Any]:
        np = require("numpy", "image", type(self).__name__)
        image_module = require("PIL.Image", "image", type(self).__name__)
        with image_module.open(source) as image:
            image.load()
            array: NDArray[Any] = np.array(image)
        return array


class PngFileIO(ImageFileIO):
    """A 2-D (grey, bool, 16-bit) or RGB(A) image array as a lossless PNG (needs ``persistable[image]``)."""

    name: ClassVar[str] = "png"
    suffix: ClassVar[str] = ".png"
    format: ClassVar[str] = "PNG"
    supported: ClassVar[frozenset[tuple[str, int]]] = frozenset(
        {("uint8", 1), ("uint16", 1), ("bool", 1), ("uint8", 2), ("uint8", 3), ("uint8", 4)}
    )


class JpegFileIO(ImageFileIO):
    """An 8-bit grey or RGB image array as a JPEG preview: lossy, it loads close, not equal."""

    name: ClassVar[str] = "jpeg"
    suffix: ClassVar[str] = ".jpg"
    format: ClassVar[str] = "JPEG"
    supported: ClassVar[frozenset[tuple[str, int]]] = frozenset({("uint8", 1), ("uint8", 3)})

    def __init__(self, quality: int = 90) -> None:
        self.quality = quality

    def _save_options(self) -> dict[str, Any]:
        return {"quality": self.quality}

    def __repr__(self) -> str:
        return f"JpegFileIO(quality={self.quality!r})"


_BY_EXTENSION: dict[str, type[ImageFileIO]] = {
    ".png": PngFileIO,
    ".jpg": JpegFileIO,
    ".jpeg": JpegFileIO,
}


def image_file_io(extension: str) -> ImageFileIO:
    """The image FileIO for a file extension (``".png"``, ``"jpg"``...)."""
    key = extension.lower() if extension.startswith(".") else f".{extension.lower()}"
    cls = _BY_EXTENSION.get(key)
    if cls is None:
        raise ValueError(
            f"No image FileIO for the extension {extension!r}; known: "
            f"{', '.join(sorted(_BY_EXTENSION))} (use OmeTiffFileIO for TIFF)."
        )
    return cls()
