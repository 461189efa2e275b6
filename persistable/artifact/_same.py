"""Whether a stored artifact already holds what a writer is about to commit in its place."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from persistable._artifact import GENERATION_LOG_FILE
from persistable.exceptions import (
    ArtifactNotFoundError,
    CorruptArtifactError,
    UnsupportedSchemeError,
)

if TYPE_CHECKING:
    from persistable.artifact._handle import Artifact

__all__ = ["stored_is_identical"]

#: What must agree besides the files: how the payload is read, and what made it.
_SAME_FIELDS = ("payload_io", "payload_file", "version", "code", "dependencies", "upstream")


def _essence(metadata: dict[str, Any]) -> tuple[Any, ...]:
    files = metadata.get("files")
    if not isinstance(files, dict):
        return (None,)
    # The generation log differs on every run (times); it is not the artifact's content.
    listed = {
        name: (record.get("size"), {k: v for k, v in record.items() if k != "size"})
        for name, record in files.items()
        if name != GENERATION_LOG_FILE and isinstance(record, dict)
    }
    return (listed, *(metadata.get(field) for field in _SAME_FIELDS))


def stored_is_identical(artifact: Artifact, metadata: dict[str, Any]) -> bool:
    """Whether ``artifact`` is committed with the very files (sizes, checksums), code and
    lineage that ``metadata`` describes, and its files verify.

    A replace that would write the same bytes can keep the stored artifact instead. A
    damaged stored copy never counts as identical: it is replaced.
    """
    artifact.refresh()
    try:
        stored = artifact.metadata
        artifact.files  # noqa: B018 - checks the listing (plain names, sizes)
    except (ArtifactNotFoundError, CorruptArtifactError, UnsupportedSchemeError):
        return False
    if _essence(stored) != _essence(metadata):
        return False
    return artifact.damage() is None
