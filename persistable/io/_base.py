"""The FileIO contract: turn one payload type into a byte stream and back."""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path
from typing import IO, Any, ClassVar, Generic, TypeVar

__all__ = ["FileIO", "PayloadT"]

PayloadT = TypeVar("PayloadT")


class FileIO(ABC, Generic[PayloadT]):
    """Serialise payloads of one type to a binary stream (``save``) and back (``load``).

    A FileIO works on streams so that every store (local folder, S3, memory) can feed
    it. Subclasses set :attr:`name` (recorded in ``metadata.json``) and :attr:`suffix`
    (the payload file's extension) and implement :meth:`save` and :meth:`load`.
    """

    #: Stable name written into ``metadata.json`` (``"pickle"``, ``"npy"``...).
    name: ClassVar[str]
    #: File suffix of the payload file, with its dot.
    suffix: ClassVar[str]
    #: True when loading runs arbitrary code from the file (pickle); untrusted stores refuse it.
    executes_code_on_load: ClassVar[bool] = False

    def check(self, payload: Any) -> None:
        """Raise :class:`~persistable.exceptions.PayloadSerializationError` early if ``payload`` cannot be saved.

        The default accepts everything and lets :meth:`save` fail.
        """

    @abstractmethod
    def save(self, payload: PayloadT, stream: IO[bytes]) -> None:
        """Write ``payload`` to the binary ``stream``."""

    @abstractmethod
    def load(self, stream: IO[bytes]) -> PayloadT:
        """Read a payload back from the binary ``stream``."""

    def load_path(self, path: Path) -> PayloadT:
        """Read a payload from a local file; IOs that can memory-map override this."""
        with path.open("rb") as stream:
            return self.load(stream)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"
