"""Optional serializer libraries, imported on first use with an install hint, and stream adapters."""

from __future__ import annotations

import importlib
import io
from typing import IO, Any

from persistable.exceptions import MissingDependencyError

__all__ = ["TellingWriter", "require", "seekable_copy", "spooled_writer"]

#: Files up to this size are buffered in memory before they are copied to a stream.
_SPOOL_BYTES = 64 << 20


def require(module: str, extra: str, who: str) -> Any:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the extra to install."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingDependencyError(
            f"{who} needs {module.split('.')[0]}, which is not installed; install it with "
            f"`pip install 'persistable[{extra}]'`."
        ) from error


class TellingWriter(io.RawIOBase):
    """A write-only stream that counts what passes, so writers that call ``tell()`` work on any sink."""

    def __init__(self, sink: IO[bytes]) -> None:
        super().__init__()
        self._sink = sink
        self._position = 0

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._sink.write(view)
        self._position += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self._position

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        # The sink belongs to the caller: closing this adapter leaves it open.
        super().close()


def _scratch(size: int | None) -> IO[bytes]:
    # A named file on disk for big payloads: some writers (tifffile) look at `.name`,
    # which an anonymous or spooled temporary file does not have as a str.
    if size is not None and size <= _SPOOL_BYTES:
        return io.BytesIO()
    import tempfile  # imported here: it costs a tenth of `import persistable`

    return tempfile.NamedTemporaryFile(prefix="persistable-", suffix=".tmp")


def seekable_copy(stream: IO[bytes]) -> IO[bytes]:
    """``stream`` itself when it can seek, else its content in a seekable temporary copy."""
    if stream.seekable():
        return stream
    head = stream.read(_SPOOL_BYTES + 1)
    copy = _scratch(len(head))
    copy.write(head)
    if len(head) > _SPOOL_BYTES:
        import shutil

        shutil.copyfileobj(stream, copy, 1 << 22)
    copy.seek(0)
    return copy


class spooled_writer:
    """A seekable scratch file for writers that seek back (TIFF, HDF5), copied to ``sink`` on exit.

    ``size`` (the expected size, if known) keeps small payloads in memory.
    """

    def __init__(self, sink: IO[bytes], size: int | None = None) -> None:
        self._sink = sink
        self.file: IO[bytes] = sink if sink.seekable() else _scratch(size)

    def __enter__(self) -> IO[bytes]:
        return self.file

    def __exit__(self, exc_type: object, *rest: object) -> None:
        if self.file is self._sink:
            return
        try:
            if exc_type is None:
                self.file.flush()
                self.file.seek(0)
                import shutil

                shutil.copyfileobj(self.file, self._sink, 1 << 22)
        finally:
            self.file.close()
