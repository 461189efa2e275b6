"""One artifact as an object of its own, and what a store holds.

:class:`Artifact` is a handle on ``<store>/<payload_name>/<key>/``: read its
``metadata.json``, ``params.json`` and generation log, load its payload with the
FileIO its metadata names, verify it, copy it to another store, set it aside
(quarantine) or delete it. :func:`list_artifacts` lists a store's artifacts with
their metadata, :func:`find_artifact` resolves a ``payload_name/key-prefix``
reference, and :func:`lineage` rebuilds the upstream graph of artifacts from the store
alone. ``Persistable``, ``persistable.sync``, the runner and the command line
all go through this package; none of them re-implements a per-file check.
"""

from typing import TYPE_CHECKING, Any

from persistable.artifact._handle import Artifact
from persistable.artifact._lineage import LineageGraph, lineage
from persistable.artifact._refs import find_artifact

if TYPE_CHECKING:
    from persistable.artifact._listing import (
        ArtifactInfo,
        PayloadSummary,
        StoreListing,
        list_artifacts,
    )

__all__ = [
    "Artifact",
    "ArtifactInfo",
    "LineageGraph",
    "PayloadSummary",
    "StoreListing",
    "find_artifact",
    "lineage",
    "list_artifacts",
]

#: The listing (``persistable ls``/``du``/``gc``) loads on first use: every
#: ``Persistable`` imports this package, few programs list a store.
_LAZY = {"ArtifactInfo", "PayloadSummary", "StoreListing", "list_artifacts"}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from persistable.artifact import _listing

    value = getattr(_listing, name)
    globals()[name] = value
    return value
