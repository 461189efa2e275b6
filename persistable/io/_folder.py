"""The contract of FileIOs whose payload is a folder of files (zarr), and how an artifact holds one.

A folder payload lives under ``<artifact>/payload<suffix>/`` (``payload.zarr/zarr.json``,
``payload.zarr/c/0/0``...). Every file is listed in ``metadata.json`` with its size and
checksum, like any artifact file, and the folder commits with the artifact (renamed into
place on a local disk, ``metadata.json`` last on object stores).
"""

from __future__ import annotations

import os
from abc import abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from persistable._artifact import HashingWriter, check_file, file_record
from persistable._hashing import BulkHasher, hash_stream
from persistable.exceptions import CorruptArtifactError, PayloadSerializationError
from persistable.io._base import FileIO, PayloadT

if TYPE_CHECKING:
    from persistable.store import Store, Transaction

__all__ = ["FolderFileIO", "FolderLocation", "read_folder", "write_folder"]


@dataclass
class FolderLocation:
    """Where a committed folder payload is, for :meth:`FolderFileIO.load_folder`.

    ``local`` is its folder on this machine (local stores); otherwise ``fs`` and
    ``url`` are the fsspec filesystem and the folder's full path in it (object stores);
    ``files`` maps each file's path inside the folder to its ``metadata.json`` record.
    ``temporary`` says that ``local`` is a copy removed after ``load_folder`` returns, so
    the payload must be read into memory. ``ref`` names the artifact and ``changed``
    answers whether its ``metadata.json`` is no longer the one these records came from
    (for messages of a lazy payload whose artifact was replaced later).
    """

    store: Store
    files: dict[str, dict[str, Any]]
    local: Path | None = None
    fs: Any = None
    url: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    temporary: bool = False
    ref: str = ""
    changed: Callable[[], bool] | None = None


class FolderFileIO(FileIO[PayloadT]):
    """A FileIO that writes its payload as a folder of files; subclasses implement the two folder methods."""

    @abstractmethod
    def save_folder(self, payload: PayloadT, folder: Path) -> None:
        """Write the payload's files into the empty local ``folder``."""

    @abstractmethod
    def load_folder(self, location: FolderLocation) -> PayloadT:
        """Open the payload committed at ``location`` (lazily where the format allows)."""

    def save(self, payload: PayloadT, stream: IO[bytes]) -> None:
        raise PayloadSerializationError(
            f"{type(self).__name__} writes a folder, not one stream; persist the payload "
            "through a Persistable (payload_io=...)."
        )

    def load(self, stream: IO[bytes]) -> PayloadT:
        raise PayloadSerializationError(
            f"{type(self).__name__} reads a folder, not one stream; load it through a Persistable."
        )


def _walk(folder: Path) -> list[str]:
    found: list[str] = []
    for root, dirs, files in os.walk(folder):
        dirs.sort()
        for name in sorted(files):
            found.append(Path(root, name).relative_to(folder).as_posix())
    return found


def write_folder(
    file_io: FolderFileIO[Any], payload: Any, transaction: Transaction, folder_name: str
) -> dict[str, dict[str, Any]]:
    """Write a folder payload into an artifact being committed; returns the records of its files."""
    records: dict[str, dict[str, Any]] = {}
    staging = getattr(transaction, "staging", None)
    if isinstance(staging, Path):
        # A local store: write straight into the staging folder, then hash by reading back
        # (reading is far cheaper than a second copy of every file).
        target = staging / folder_name
        target.mkdir()
        file_io.save_folder(payload, target)
        for relative in _walk(target):
            records[f"{folder_name}/{relative}"] = file_record(target / relative)
        return records
    import shutil  # here, not at the top: both cost a tenth of `import persistable`
    import tempfile

    with tempfile.TemporaryDirectory(prefix="persistable-folder-") as scratch:
        file_io.save_folder(payload, Path(scratch))
        for relative in _walk(Path(scratch)):
            name = f"{folder_name}/{relative}"
            with (
                Path(scratch, relative).open("rb") as source,
                HashingWriter(transaction.open_write(name)) as writer,
            ):
                shutil.copyfileobj(source, writer, 1 << 22)
            records[name] = writer.record
    return records


def read_folder(
    file_io: FolderFileIO[Any],
    store: Store,
    artifact_dir: str,
    folder_name: str,
    files: dict[str, Any],
    *,
    verify: bool,
    ref: str = "",
    changed: Callable[[], bool] | None = None,
) -> Any:
    """Check a committed folder payload against its records and open it with ``file_io``.

    Sizes are always checked; checksums with ``verify`` (and for stores that are neither
    local nor fsspec, whose files are copied to a temporary folder and checked on the way).
    """
    prefix = f"{folder_name}/"
    members = {
        name[len(prefix) :]: record
        for name, record in files.items()
        if name.startswith(prefix) and isinstance(record, dict)
    }
    where = f"{store.url}/{artifact_dir}/{folder_name}"
    local = store.local_path(f"{artifact_dir}/{folder_name}")
    fs = getattr(store, "fs", None)
    full = getattr(store, "_full", None)
    listed: dict[str, int] | None = None
    if local is None and fs is not None and callable(full):
        # One listing gives every size (a folder of many chunks is one request, not N).
        root = str(full(f"{artifact_dir}/{folder_name}")).rstrip("/")
        found = fs.find(root, detail=True)
        listed = {
            str(name)[len(root) + 1 :]: int(info.get("size") or 0)
            for name, info in found.items()
            if str(name).startswith(f"{root}/")
        }
    for relative, record in sorted(members.items()):
        path = f"{artifact_dir}/{folder_name}/{relative}"
        try:
            if listed is not None:
                if relative not in listed:
                    raise FileNotFoundError(path)
                size = listed[relative]
            else:
                size = store.size(path) if local is None else (local / relative).stat().st_size
        except FileNotFoundError as error:
            raise CorruptArtifactError(
                f"{where}/{relative} is missing although metadata.json lists it."
            ) from error
        if size != record.get("size"):
            raise CorruptArtifactError(
                f"{where}/{relative} has {size} bytes, metadata.json says {record.get('size')}; "
                "the file was truncated or changed."
            )
        if verify:
            with store.open_read(path) as stream:
                check_file(f"{where}/{relative}", hash_stream(stream), record)
    if local is not None:
        return file_io.load_folder(
            FolderLocation(store, members, local=local, ref=ref, changed=changed)
        )
    if fs is not None and callable(full):
        url = full(f"{artifact_dir}/{folder_name}")
        return file_io.load_folder(
            FolderLocation(store, members, fs=fs, url=url, ref=ref, changed=changed)
        )
    import shutil
    import tempfile

    scratch = Path(tempfile.mkdtemp(prefix="persistable-folder-"))
    for relative, record in sorted(members.items()):
        target = scratch / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        data = store.read_bytes(f"{artifact_dir}/{folder_name}/{relative}")
        hasher = BulkHasher()
        hasher.update(data)
        check_file(f"{where}/{relative}", hasher, record)
        target.write_bytes(data)
    try:
        return file_io.load_folder(FolderLocation(store, members, local=scratch, temporary=True))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
