"""Copy one artifact between stores: every file checked while it streams, ``metadata.json`` last."""

from __future__ import annotations

from typing import TYPE_CHECKING

from persistable._artifact import METADATA_SCHEME, PARAMS_FILE, check_file, dump_metadata
from persistable._hashing import BulkHasher, hash_stream
from persistable.exceptions import CorruptArtifactError
from persistable.store._base import Store

if TYPE_CHECKING:
    from persistable.artifact._handle import Artifact

__all__ = ["copy_artifact_files"]

_CHUNK = 1 << 22
#: Files below this size are copied with one whole read (one request on object stores).
_SMALL = 8 << 20
_NOT_COPIED = "the file was changed after it was committed, so it was not copied"


def copy_artifact_files(
    artifact: Artifact, destination: Store, *, verify: bool = True
) -> int | None:
    """See :meth:`Artifact.copy_to`."""
    source = artifact.store
    folder = artifact.dir
    # One reading of metadata.json gives both the files to copy and what is committed.
    artifact.refresh()
    files = artifact.files  # parsed and checked: plain names, sizes
    metadata = dict(artifact.metadata)
    if metadata.pop("files_folder", None) is not None:
        # Written at their names in the destination, which its metadata.json says.
        metadata["metadata_scheme"] = METADATA_SCHEME
    raw_metadata = dump_metadata(metadata)  # as the writer formats it: same bytes, same size
    copied = len(raw_metadata)
    params: bytes | None = None  # for the destination's lineage index
    with destination.begin(folder) as transaction:
        for name, record in sorted(files.items()):
            hasher = BulkHasher()
            path = artifact.path(name)
            try:
                if record["size"] < _SMALL:
                    data = source.read_bytes(path)
                    hasher.update(data)
                    transaction.write_bytes(name, data)
                    if name == PARAMS_FILE:
                        params = data
                else:
                    with source.open_read(path) as stream, transaction.open_write(name) as sink:
                        while chunk := stream.read(_CHUNK):
                            hasher.update(chunk)
                            sink.write(chunk)
            except FileNotFoundError as error:
                raise CorruptArtifactError(
                    f"{source.url}/{path} is missing although metadata.json lists it."
                ) from error
            check_file(f"{source.url}/{path}", hasher, record, _NOT_COPIED)
            copied += hasher.size
        committed = transaction.commit(raw_metadata)
    if not committed:  # another writer's: an artifact of this lineage all the same
        _add_to_index(artifact, destination, params)
        return None
    if verify:
        for name, record in sorted(files.items()):
            path = f"{folder}/{name}"
            try:
                with destination.open_read(path) as stream:
                    check_file(
                        f"{destination.url}/{path}", hash_stream(stream), record, _NOT_COPIED
                    )
            except CorruptArtifactError:
                destination.quarantine_dir(folder)
                raise
    _add_to_index(artifact, destination, params)
    return copied


def _add_to_index(artifact: Artifact, destination: Store, params: bytes | None) -> None:
    """Buffer the copy's params.json for the destination's lineage index (object stores)."""
    if params is not None:
        from persistable import _lineage_feed

        _lineage_feed.record(destination, artifact.payload_name, artifact.key, params)
