"""A payload stream that keeps a small payload in memory and writes it as one file at close."""

from __future__ import annotations

import io
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from persistable.store._base import Transaction

__all__ = ["SpoolingWriter"]

#: Payloads up to this size are written in one call at close (bigger ones stream).
SPOOL_LIMIT = 1 << 20


class SpoolingWriter(io.RawIOBase):
    """Write the artifact file ``name`` of ``transaction``, in one piece when it is small.

    Bytes collect in memory until :data:`SPOOL_LIMIT`; past that (or when a caller asks
    for the file descriptor, e.g. to reserve disk space) the file is opened with
    :meth:`Transaction.open_write` and everything streams into it. A payload that stays
    small is written by :meth:`Transaction.write_bytes` at :meth:`close`: on a local
    store three system calls instead of six, plus one per buffered write.
    """

    def __init__(self, transaction: Transaction, name: str, limit: int = SPOOL_LIMIT) -> None:
        super().__init__()
        self._transaction = transaction
        self._name = name
        self._limit = limit
        self._buffer: io.BytesIO | None = io.BytesIO()
        self._file: IO[bytes] | None = None

    def writable(self) -> bool:
        return True

    def _spill(self) -> IO[bytes]:
        if self._file is None:
            assert self._buffer is not None
            self._file = self._transaction.open_write(self._name)
            self._file.write(self._buffer.getbuffer())
            self._buffer = None
        return self._file

    def write(self, data: Any) -> int:
        size = memoryview(data).nbytes
        if self._file is None:
            assert self._buffer is not None
            if self._buffer.tell() + size <= self._limit:
                self._buffer.write(data)
                return size
        self._spill().write(data)
        return size

    def fileno(self) -> int:
        return self._spill().fileno()

    def tell(self) -> int:
        if self._file is not None:
            return self._file.tell()
        assert self._buffer is not None
        return self._buffer.tell()

    def flush(self) -> None:
        if self._file is not None and not self._file.closed:
            self._file.flush()

    def close(self) -> None:
        if self.closed:
            return
        try:
            super().close()
        finally:
            if self._file is not None:
                self._file.close()
            elif self._buffer is not None:
                data, self._buffer = self._buffer.getvalue(), None
                self._transaction.write_bytes(self._name, data)
