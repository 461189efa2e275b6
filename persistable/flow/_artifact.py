"""The flow's output file as an artifact: its params, FileIO and Persistable."""

from __future__ import annotations

import dataclasses
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from persistable._artifact import file_record
from persistable._persistable import Persistable
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

    def _generate_payload(self, **untracked_payload_params: Any) -> Path:
        produced = untracked_payload_params["produced"]
        return Path(produced)

    def _write_payload(
        self, payload: Path, transaction: Transaction, files: dict[str, dict[str, Any]]
    ) -> None:
        """On a local store: a kernel copy into the staging folder, then its checksum.

        This saves the user-space copy of :meth:`H5FileIO.save` (the file can be many GB);
        the checksum is computed on the staged copy, so it records what was committed.
        """
        target = transaction.local_path(self.payload_file)
        if target is None:
            super()._write_payload(payload, transaction, files)
            return
        shutil.copyfile(payload, target)
        files[self.payload_file] = file_record(target)
