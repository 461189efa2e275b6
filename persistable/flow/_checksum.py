"""The output file's checksum, computed on a thread of its own while the flow commits.

The finished output is checksummed for ``metadata.json`` (``file_record``: xxh3 over the
page cache through a memory map; xxhash releases the GIL). That read is the largest
fixed cost left after the loop, and the flow has other work to do meanwhile (its
journal's removal, the commit's lock, staging folder and params), so the hash starts as
soon as the file is final, and the commit takes its result for the file it moves into
the store only if that is the very file hashed, unchanged since: the same device, inode,
size and modification time before the hash, after it, and at the commit. Anything else
(another file, a failed read) and the commit checksums the staged file itself, as it
always did.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from persistable._artifact import stream_record

__all__ = ["PendingRecord"]


def _identity(stat: os.stat_result) -> tuple[int, int, int, int]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)


class PendingRecord:
    """The ``file_record`` of the file at ``path``, being computed by a thread."""

    def __init__(self, path: Path) -> None:
        self._stream = path.open("rb")  # opened here: a rename meanwhile changes nothing
        self._before = _identity(os.fstat(self._stream.fileno()))
        self._after: tuple[int, int, int, int] | None = None
        self._record: dict[str, Any] | None = None
        self._thread = threading.Thread(target=self._run, name="flow-checksum", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            self._record = stream_record(self._stream)
            self._after = _identity(os.fstat(self._stream.fileno()))
        except Exception:
            self._record = None  # the commit then checksums the file itself
        finally:
            self._stream.close()

    def record_for(self, target: Path) -> dict[str, Any] | None:
        """The record, if ``target`` is the file hashed and unchanged since; else None."""
        self._thread.join()
        if self._record is None or self._after != self._before:
            return None
        if _identity(os.stat(target)) != self._before:
            return None
        return self._record

    def discard(self) -> None:
        """Wait for the thread (its file is closed then); the record is not needed."""
        self._thread.join()
