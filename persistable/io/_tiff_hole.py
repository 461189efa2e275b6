"""An uncompressed OME-TIFF written and hashed in one pass: tifffile lays out the file, we write the pixels.

``tifffile.imwrite(data=None, shape=..., dtype=..., returnoffset=True)`` writes every
IFD, tag and the OME-XML of a contiguous image and leaves a hole where the pixels go,
returning its offset. The pixels are then written into that hole from the array's own
buffer while a second thread hashes the same buffer (:class:`HashingWriter`), and the
checksum is fed in file order: the head ``[0, offset)`` read back, the pixels, the
tail read back. The digest is the ordinary xxh3-128 of the whole file, exactly what
reading the file back would give (a test compares both), but RAM is read once
instead of the page cache being read a second time after tifffile's write.

The layout is checked before the pixels are written: tifffile must report one
contiguous series at that offset, of the array's shape, dtype and byte size, inside
the file. Anything else (tifffile could not lay it out, a byte order numpy would not
write as is) returns None with the file emptied again, and the caller writes it the
ordinary way.
"""

from __future__ import annotations

import io
from typing import IO, Any, cast

from persistable._artifact import HashingWriter

__all__ = ["write_hashed"]


class _Borrowed(io.RawIOBase):
    """The staging file as a HashingWriter's sink, left open when the writer closes."""

    def __init__(self, stream: IO[bytes]) -> None:
        super().__init__()
        self._stream = stream

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._stream.write(data)

    def fileno(self) -> int:
        return self._stream.fileno()

    def tell(self) -> int:
        return self._stream.tell()

    def flush(self) -> None:
        self._stream.flush()


def _layout_fits(tifffile: Any, stream: IO[bytes], array: Any, offset: int, end: int) -> bool:
    """Whether the laid-out file holds the array as one contiguous series at ``offset``."""
    stream.seek(0)
    with tifffile.TiffFile(stream, _multifile=False) as tiff:
        if len(tiff.series) != 1:
            return False
        series = tiff.series[0]
        return bool(
            series.dataoffset == offset
            and series.size * series.dtype.itemsize == array.nbytes
            and series.dtype.newbyteorder("=") == array.dtype
            and offset + array.nbytes <= end
        )


def write_hashed(
    tifffile: Any, payload: Any, stream: IO[bytes], options: dict[str, Any]
) -> dict[str, Any] | None:
    """Write ``payload`` as an OME-TIFF into the empty seekable file ``stream``; its ``{"size", "xxh3_128"}``.

    None (and ``stream`` empty again) when the array cannot be written this way.
    """
    import numpy as np

    if not isinstance(payload, np.ndarray) or not payload.dtype.isnative or payload.nbytes == 0:
        return None
    array = np.ascontiguousarray(payload)
    try:
        laid = tifffile.imwrite(
            stream,
            data=None,
            shape=array.shape,
            dtype=array.dtype,
            returnoffset=True,
            **options,
        )
    except (ValueError, TypeError):
        laid = None
    end = stream.seek(0, io.SEEK_END)
    if laid is None or not _layout_fits(tifffile, stream, array, int(laid[0]), end):
        stream.seek(0)
        stream.truncate()
        return None
    offset = int(laid[0])
    stream.seek(0)
    head = stream.read(offset)
    writer = HashingWriter(cast(IO[bytes], _Borrowed(stream)))
    writer.hasher.update(head)
    stream.seek(offset)
    writer.write(array.reshape(-1).view(np.uint8).data)
    writer.flush()
    stream.seek(offset + array.nbytes)
    while chunk := stream.read(1 << 20):
        writer.hasher.update(chunk)
    if writer.hasher.size != end or stream.seek(0, io.SEEK_END) != end:
        raise OSError(
            f"The OME-TIFF staging file changed size while its pixels were written "
            f"({writer.hasher.size} bytes hashed, {end} laid out); nothing is committed."
        )
    return writer.record
