"""The FileIO contract: turn one payload type into a byte stream and back.

A FileIO implements either the stream pair ``save(payload, stream)`` / ``load(stream)``
or, as in persistable 1.x, the path pair ``_save(payload, filepath)`` /
``_load(filepath)``; the second kind is handed a real local file (see :class:`FileIO`).
"""

from __future__ import annotations

import os
from abc import ABC
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

from persistable.exceptions import ExplainedNotImplementedError

__all__ = ["FileIO", "PayloadT", "PayloadTypeT"]

PayloadT = TypeVar("PayloadT")
#: 1.x's name of the payload type variable.
PayloadTypeT = TypeVar("PayloadTypeT")

#: The 1.x payload suffix, used by path-based FileIOs that set none.
V1_SUFFIX = ".persistable"
_COPY_BUFFER = 1 << 20


def _overrides(cls: type, name: str) -> bool:
    return getattr(cls, name) is not getattr(FileIO, name)


class FileIO(ABC, Generic[PayloadT]):
    """Serialise payloads of one type to a binary stream (``save``) and back (``load``).

    A FileIO works on streams so that every store (local folder, S3, memory) can feed
    it. Subclasses set :attr:`name` (recorded in ``metadata.json``) and :attr:`suffix`
    (the payload file's extension) and implement :meth:`save` and :meth:`load`.

    A 1.x FileIO, which implements ``_save(payload, filepath, **kwargs)`` and
    ``_load(filepath, **kwargs)`` instead, works unchanged: on a local store it loads
    straight from the artifact's file; it saves into a temporary local file whose bytes
    are then streamed, checksummed, into the store (and downloads go through a
    temporary file too). Its :attr:`name` defaults to ``<module>:<class>`` and its
    :attr:`suffix` to 1.x's ``.persistable``. Called as in 1.x, ``save(payload,
    filepath)`` and ``load(filepath)`` with a path still work.
    """

    #: Stable name written into ``metadata.json`` (``"pickle"``, ``"npy"``...).
    name: ClassVar[str]
    #: File suffix of the payload file, with its dot.
    suffix: ClassVar[str]
    #: True when loading runs arbitrary code from the file (pickle); untrusted stores refuse it.
    executes_code_on_load: ClassVar[bool] = False
    #: Whether the subclass implements 1.x's path pair ``_save``/``_load`` (set per class).
    path_based: ClassVar[bool] = False
    #: True when ``save`` seeks back in its stream (TIFF, HDF5): on a local store it gets
    #: the staging file itself (hashed by reading it back) instead of a scratch copy.
    seeks_on_save: ClassVar[bool] = False

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        streams = _overrides(cls, "save") or _overrides(cls, "load")
        paths = _overrides(cls, "_save") or _overrides(cls, "_load")
        cls.path_based = paths and not streams
        if cls.path_based:
            if not hasattr(cls, "name"):
                cls.name = f"{cls.__module__}:{cls.__qualname__}"
            if not hasattr(cls, "suffix"):
                cls.suffix = V1_SUFFIX

    def __new__(cls, *args: Any, **kwargs: Any) -> FileIO[Any]:
        streams = _overrides(cls, "save") and _overrides(cls, "load")
        paths = _overrides(cls, "_load")  # 1.x required only _load (a read-only FileIO)
        if not streams and not paths:
            raise TypeError(
                f"{cls.__qualname__} implements neither save(payload, stream) and "
                "load(stream) nor 1.x's _save(payload, filepath) and _load(filepath); a "
                "FileIO subclass must write one of these two pairs of methods."
            )
        return super().__new__(cls)

    def check(self, payload: Any) -> None:
        """Raise :class:`~persistable.exceptions.PayloadSerializationError` early if ``payload`` cannot be saved.

        The default accepts everything and lets :meth:`save` fail.
        """

    def save(self, payload: PayloadT, stream: IO[bytes]) -> None:
        """Write ``payload`` to the binary ``stream`` (a path for a 1.x path-based FileIO)."""
        if isinstance(stream, (str, os.PathLike)):  # 1.x: save(payload, filepath)
            filepath = Path(stream)
            filepath.parent.mkdir(parents=True, exist_ok=True)
            self._save(payload=payload, filepath=filepath)
            return
        import shutil  # here, not at the top: both cost a tenth of `import persistable`
        import tempfile

        with tempfile.TemporaryDirectory(prefix="persistable-") as folder:
            filepath = Path(folder) / f"payload{self.suffix}"
            self._save(payload=payload, filepath=filepath)
            if not filepath.is_file():
                raise FileNotFoundError(
                    f"{type(self).__qualname__}._save() wrote no file at the path it was "
                    f"given ({filepath.name!r}); it must write the payload to exactly that path."
                )
            with filepath.open("rb") as source:
                shutil.copyfileobj(source, stream, _COPY_BUFFER)

    def save_file(self, payload: PayloadT, stream: IO[bytes]) -> dict[str, Any] | None:
        """:meth:`save` into a local staging file opened ``w+b`` (FileIOs with :attr:`seeks_on_save`).

        Returns None, or the ``{"size", "xxh3_128"}`` record of the whole file when the
        FileIO hashed every byte of it while writing (the file is then not read back).
        """
        self.save(payload, stream)
        return None

    def load(self, stream: IO[bytes]) -> PayloadT:
        """Read a payload back from the binary ``stream`` (a path for a 1.x path-based FileIO)."""
        if isinstance(stream, (str, os.PathLike)):  # 1.x: load(filepath)
            return self._load(filepath=Path(stream))
        import shutil
        import tempfile

        with tempfile.TemporaryDirectory(prefix="persistable-") as folder:
            filepath = Path(folder) / f"payload{self.suffix}"
            with filepath.open("wb") as sink:
                shutil.copyfileobj(stream, sink, _COPY_BUFFER)
            return self._load(filepath=filepath)

    def load_path(self, path: Path) -> PayloadT:
        """Read a payload from a local file; IOs that can memory-map override this."""
        if self.path_based:
            return self._load(filepath=path)
        with path.open("rb") as stream:
            return self.load(stream)

    def _save(self, payload: PayloadT, filepath: Path, **kwargs: Any) -> None:
        """1.x's path-based save: write ``payload`` to the local file ``filepath``."""
        raise ExplainedNotImplementedError(f"{type(self).__qualname__}._save")

    def _load(self, filepath: Path, **kwargs: Any) -> PayloadT:
        """1.x's path-based load: read a payload from the local file ``filepath``."""
        raise ExplainedNotImplementedError(f"{type(self).__qualname__}._load")

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
