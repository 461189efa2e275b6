"""Built-in FileIOs: pickle (the default), JSON, numpy ``.npy``/``.npz``, text and bytes."""

from __future__ import annotations

import io
import json
import pickle
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, ClassVar, Literal, cast

from persistable.exceptions import MissingPayloadClassError, PayloadSerializationError
from persistable.io._base import FileIO, PayloadT

if TYPE_CHECKING:
    from numpy.typing import NDArray

# numpy is imported inside the methods of the numpy IOs, not here: `import persistable`
# stays fast for pipelines that never touch numpy (see docs/benchmarks.md).

__all__ = [
    "BytesFileIO",
    "JsonFileIO",
    "NpyFileIO",
    "NpzFileIO",
    "PickleFileIO",
    "TextFileIO",
]


def _refuse(
    payload: Any, file_io: FileIO[Any], expected: str, suggestion: str
) -> PayloadSerializationError:
    return PayloadSerializationError(
        f"{type(file_io).__name__} expected {expected} but the payload is a "
        f"{type(payload).__module__}.{type(payload).__qualname__}; {suggestion}"
    )


class PickleFileIO(FileIO[PayloadT]):
    """Any picklable payload, pickle protocol 5 (out-of-band buffers stay zero-copy)."""

    name: ClassVar[str] = "pickle"
    suffix: ClassVar[str] = ".pkl"
    executes_code_on_load: ClassVar[bool] = True

    def __init__(self, protocol: int = 5) -> None:
        self.protocol = protocol

    def save(self, payload: PayloadT, stream: IO[bytes]) -> None:
        try:
            self._dump(payload, stream)
        except (pickle.PicklingError, TypeError, AttributeError) as error:
            raise _refuse(
                payload,
                self,
                "a picklable object",
                f"pickle said: {error}. Make the payload picklable (no open files, locks or "
                "lambdas) or pass a payload_io that can write it.",
            ) from error

    def _dump(self, payload: PayloadT, stream: IO[bytes]) -> None:
        """Pickle ``payload`` into ``stream`` (a subclass may write an equivalent object)."""
        pickle.dump(payload, stream, protocol=self.protocol)

    def load(self, stream: IO[bytes]) -> PayloadT:
        result: PayloadT = _NamingUnpickler(stream).load()
        return result


class _NamingUnpickler(pickle.Unpickler):
    """An unpickler whose failure to find a class names it (the class, not the file, is missing)."""

    def find_class(self, module: str, name: str) -> Any:
        try:
            return super().find_class(module, name)
        except (ImportError, AttributeError) as error:
            # A multiprocessing worker runs the main script as __mp_main__ (and while it
            # does, __main__ is still the worker's own): the script's classes are there.
            alias = sys.modules.get("__mp_main__") if module == "__main__" else None
            if alias is not None and hasattr(alias, name):
                return getattr(alias, name)
            raise MissingPayloadClassError(
                f"The pickled payload refers to {module}.{name}, which cannot be imported here "
                f"({type(error).__name__}: {error}); import the module that defines it before "
                "loading (a class defined in a script is pickled as __main__.<name>: move it into "
                "a module both sides import), or persist with a typed FileIO (NpyFileIO, "
                "JsonFileIO...)."
            ) from error


class JsonFileIO(FileIO[Any]):
    """JSON-able payloads (dicts, lists, numbers, strings), written UTF-8 and indented."""

    name: ClassVar[str] = "json"
    suffix: ClassVar[str] = ".json"

    def __init__(self, indent: int | None = 2) -> None:
        self.indent = indent

    def save(self, payload: Any, stream: IO[bytes]) -> None:
        try:
            text = json.dumps(payload, indent=self.indent, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise _refuse(
                payload,
                self,
                "a JSON-able value (dict, list, str, finite number, bool, None)",
                f"json said: {error}. Convert the payload or use PickleFileIO.",
            ) from error
        stream.write(text.encode("utf-8"))

    def load(self, stream: IO[bytes]) -> Any:
        return json.loads(stream.read().decode("utf-8"))


class NpyFileIO(FileIO["NDArray[Any]"]):
    """One numpy array as ``.npy``; object arrays are refused (they would need pickle).

    Parameters
    ----------
    mmap_mode
        When set (``"r"``, ``"r+"``, ``"c"``), arrays on local stores load memory-mapped.
    """

    name: ClassVar[str] = "npy"
    suffix: ClassVar[str] = ".npy"

    def __init__(self, mmap_mode: Literal["r", "r+", "c"] | None = None) -> None:
        self.mmap_mode = mmap_mode

    def check(self, payload: Any) -> None:
        import numpy as np

        if not isinstance(payload, np.ndarray):
            raise _refuse(
                payload,
                self,
                "a numpy.ndarray",
                "use NpzFileIO for several arrays or PickleFileIO.",
            )
        if isinstance(payload, np.ma.MaskedArray):
            raise _refuse(
                payload,
                self,
                "a plain numpy.ndarray (.npy has no place for a mask, which would be lost)",
                "use PickleFileIO, or save .data and .mask with NpzFileIO.",
            )
        if payload.dtype.hasobject:
            raise _refuse(
                payload,
                self,
                "a numpy array of a non-object dtype",
                "object arrays need pickle: use PickleFileIO or convert the dtype.",
            )

    def save(self, payload: NDArray[Any], stream: IO[bytes]) -> None:
        import numpy as np

        self.check(payload)
        array = np.ascontiguousarray(payload) if not payload.flags.f_contiguous else payload
        header = np.lib.format.header_data_from_array_1_0(array)
        try:
            np.lib.format.write_array_header_1_0(stream, header)
        except ValueError:
            np.lib.format.write_array_header_2_0(stream, header)
        if array.size:
            # Hand the array's own memory to the stream: no copy, one write.
            flat = array.T.reshape(-1) if header["fortran_order"] else array.reshape(-1)
            # A uint8 view, not memoryview(flat): datetime64 arrays have no buffer format.
            stream.write(memoryview(cast(Any, flat.view(np.uint8))))

    def load(self, stream: IO[bytes]) -> NDArray[Any]:
        import numpy as np

        if isinstance(stream, io.BytesIO):
            # A download held in memory: one copy of its bytes instead of read_array's
            # slice-by-slice reads.
            viewed = _view_npy_buffer(stream)
            if viewed is not None:
                return viewed
        # read_array, not np.load: np.load seeks back after sniffing the magic bytes,
        # which streams from object stores may not support.
        array: NDArray[Any] = np.lib.format.read_array(stream, allow_pickle=False)
        return array

    def load_path(self, path: Path) -> NDArray[Any]:
        import numpy as np

        array: NDArray[Any] = np.load(path, mmap_mode=self.mmap_mode, allow_pickle=False)
        return array

    def __repr__(self) -> str:
        return f"NpyFileIO(mmap_mode={self.mmap_mode!r})"


def _view_npy_buffer(stream: io.BytesIO) -> NDArray[Any] | None:
    """The array of an in-memory ``.npy`` read with one copy, or None to fall back to read_array."""
    import numpy as np

    start = stream.tell()
    fmt = np.lib.format
    version = fmt.read_magic(stream)
    if version == (1, 0):
        shape, fortran_order, dtype = fmt.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran_order, dtype = fmt.read_array_header_2_0(stream)
    else:
        stream.seek(start)
        return None
    if dtype.hasobject:
        stream.seek(start)
        return None  # read_array raises the proper "object arrays need pickle" error
    count = 1
    for extent in shape:
        count *= extent
    # getvalue() shares the downloaded bytes (no copy); one copy makes the array
    # writable like np.load's, still far cheaper than read_array's sliced reads.
    flat = np.frombuffer(stream.getvalue(), dtype=dtype, count=count, offset=stream.tell()).copy()
    stream.seek(0, io.SEEK_END)
    result: NDArray[Any] = (
        flat.reshape(shape[::-1]).transpose() if fortran_order else flat.reshape(shape)
    )
    return result


class NpzFileIO(FileIO["dict[str, NDArray[Any]]"]):
    """A mapping of names to numpy arrays as ``.npz`` (optionally compressed); loads a dict."""

    name: ClassVar[str] = "npz"
    suffix: ClassVar[str] = ".npz"

    def __init__(self, compressed: bool = False) -> None:
        self.compressed = compressed

    def check(self, payload: Any) -> None:
        import numpy as np

        if not isinstance(payload, Mapping) or not all(
            isinstance(key, str)
            and isinstance(value, np.ndarray)
            and not isinstance(value, np.ma.MaskedArray)  # the mask would be lost
            and not value.dtype.hasobject
            for key, value in payload.items()
        ):
            raise _refuse(
                payload,
                self,
                "a mapping of str to numeric numpy arrays",
                "use NpyFileIO for one array or PickleFileIO for other objects.",
            )

    def save(self, payload: dict[str, NDArray[Any]], stream: IO[bytes]) -> None:
        import zipfile  # imported here, not at the top: it pulls in shutil, bz2 and lzma

        import numpy as np

        self.check(payload)
        # Written with zipfile rather than np.savez(stream, **payload), which would take
        # entries named "file" or "allow_pickle" for its own arguments.
        compression = zipfile.ZIP_DEFLATED if self.compressed else zipfile.ZIP_STORED
        with zipfile.ZipFile(stream, mode="w", compression=compression, allowZip64=True) as archive:
            for name, array in payload.items():
                with archive.open(f"{name}.npy", mode="w", force_zip64=True) as member:
                    np.lib.format.write_array(member, array, allow_pickle=False)

    def load(self, stream: IO[bytes]) -> dict[str, NDArray[Any]]:
        import numpy as np

        # npz needs seeking; read into memory when the stream cannot seek.
        source: IO[bytes] = stream if stream.seekable() else io.BytesIO(stream.read())
        with np.load(source, allow_pickle=False) as archive:
            return {name: archive[name] for name in archive.files}

    def __repr__(self) -> str:
        return f"NpzFileIO(compressed={self.compressed!r})"


class TextFileIO(FileIO[str]):
    """A ``str`` payload as a UTF-8 text file."""

    name: ClassVar[str] = "text"
    suffix: ClassVar[str] = ".txt"

    def check(self, payload: Any) -> None:
        if not isinstance(payload, str):
            raise _refuse(payload, self, "a str", "convert it with str() or use PickleFileIO.")

    def save(self, payload: str, stream: IO[bytes]) -> None:
        self.check(payload)
        stream.write(payload.encode("utf-8"))

    def load(self, stream: IO[bytes]) -> str:
        return stream.read().decode("utf-8")


class BytesFileIO(FileIO[bytes]):
    """A ``bytes`` payload written as is."""

    name: ClassVar[str] = "bytes"
    suffix: ClassVar[str] = ".bin"

    def check(self, payload: Any) -> None:
        if not isinstance(payload, (bytes, bytearray, memoryview)):
            raise _refuse(payload, self, "bytes", "encode it first or use PickleFileIO.")

    def save(self, payload: bytes, stream: IO[bytes]) -> None:
        self.check(payload)
        stream.write(payload)

    def load(self, stream: IO[bytes]) -> bytes:
        return stream.read()
