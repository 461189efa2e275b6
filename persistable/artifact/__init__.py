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

from persistable.artifact._handle import Artifact
from persistable.artifact._lineage import LineageGraph, lineage
from persistable.artifact._listing import ArtifactInfo, PayloadSummary, StoreListing, list_artifacts
from persistable.artifact._refs import find_artifact

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
