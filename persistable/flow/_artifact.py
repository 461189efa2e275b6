"""The flow's output file as an artifact: its params, FileIO and Persistable."""

from __future__ import annotations

import dataclasses
import errno
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from persistable._artifact import file_record
from persistable._persistable import Persistable
from persistable.exceptions import CorruptArtifactError
from persistable.flow._checksum import PendingRecord
from persistable.io import FileIO
from persistable.params import PersistableParams
from persistable.store import Transaction

__all__ = ["FlowOutput", "FlowParams", "H5FileIO"]

_COPY_CHUNK = 8 << 20


class H5FileIO(FileIO[Path]):
    """A finished HDF5 file as a payload: saved by copying its bytes, loaded as its path.

    On a local store ``load_path`` returns the artifact's own file (read it, do not
    change it); from a stream the bytes go to a temporary file first.
    """

    name = "h5file"
    suffix = ".h5"

    def save(self, payload: Path, stream: IO[bytes]) -> None:
        with Path(payload).open("rb") as source:
            shutil.copyfileobj(source, stream, _COPY_CHUNK)

    def load(self, stream: IO[bytes]) -> Path:
        with tempfile.NamedTemporaryFile(suffix=".h5", delete=False) as target:
            shutil.copyfileobj(stream, target, _COPY_CHUNK)
        return Path(target.name)

    def load_path(self, path: Path) -> Path:
        return path


@dataclasses.dataclass
class FlowParams(PersistableParams):
    """Everything the output of a flow depends on (the number of ranks does not)."""

    configs: list[Any]
    input_digest: str | None
    start: int | None
    end: int | None
    drop: list[str]
    compression: str | None
    classes: list[Any]


class FlowOutput(Persistable[Path, FlowParams]):
    """The output file of a flow, committed once the whole flow finished."""

    default_payload_io = H5FileIO()
    version = 1
    #: The checksum of the finished file, being computed while the commit starts (set
    #: by the flow before ``generate``; used for that file only, see ``_checksum``).
    pending_record: PendingRecord | None = None

    def set_aside(self, error: CorruptArtifactError) -> None:
        """Quarantine the stored output (its checksum failed), with a warning."""
        self._quarantine(error)

    def _generate_payload(self, **untracked_payload_params: Any) -> Path:
        produced = untracked_payload_params["produced"]
        return Path(produced)

    def _write_payload(
        self, payload: Path, transaction: Transaction, files: dict[str, dict[str, Any]]
    ) -> None:
        """On a local store: the finished file is *moved* into the staging folder.

        A rename when the store is on the output's file system (nothing is copied; the
        file can be many GB), a kernel copy otherwise. The staged file is made read-only
        and checksummed there (it was just written: the read comes from the page cache),
        so the record is of what is committed; the flow may have started that checksum
        on the finished file already (``pending_record``), which counts only when the
        staged file is that file, unchanged. Other stores stream it as any payload.
        """
        pending, self.pending_record = self.pending_record, None
        target = transaction.local_path(self.payload_file)
        if target is None:
            if pending is not None:
                pending.discard()
            super()._write_payload(payload, transaction, files)
            return
        try:
            os.replace(payload, target)
        except OSError as error:
            if error.errno != errno.EXDEV:
                raise
            shutil.copyfile(payload, target)
        os.chmod(target, 0o444)
        record = None if pending is None else pending.record_for(target)
        files[self.payload_file] = record if record is not None else file_record(target)
