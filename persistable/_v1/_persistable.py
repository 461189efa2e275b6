"""The 1.x members of ``Persistable``: ``persist_filepath`` and the hook that adopts 1.x caches."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from persistable.store._local import LocalStore

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = ["V1PersistableMethods"]


@functools.cache
def _adopt_function() -> Callable[[Persistable[Any, Any], str], tuple[Any] | None]:
    """``adopt_v1_cache``, imported on the first missing artifact, then kept (every first run asks)."""
    from persistable._v1._adopt import adopt_v1_cache

    return adopt_v1_cache


class V1PersistableMethods:
    """Mixed into ``Persistable``: what 1.x code and 1.x caches need from it."""

    #: Look for the 1.x file of the same params in a local ``data_dir`` when an artifact
    #: is missing, and adopt it (see docs/migrating-from-1.x.md). Costs one ``stat``.
    adopt_v1_caches: bool = True

    @property
    def persist_filepath(self) -> Path | str:
        """Deprecated (1.x): the committed payload file (or where it will be); use ``artifact_path``.

        A replaced artifact's files are in the folder its ``metadata.json`` names
        (``<key>/.r-<id>/``); this is that file, found again on each access.
        """
        warnings.warn(
            "persist_filepath is 1.x's name: artifacts are folders now, so it gives the "
            "payload file inside the artifact folder, not 1.x's '<name>(<md5>)'; use "
            "artifact_path (the folder) and payload_file instead.",
            DeprecationWarning,
            stacklevel=2,
        )
        this: Persistable[Any, Any] = self  # type: ignore[assignment]
        from persistable.artifact._handle import Artifact
        from persistable.exceptions import ArtifactNotFoundError, CorruptArtifactError

        artifact = Artifact(this.store, this.payload_name, this.persist_hash)
        try:
            # A replaced artifact keeps its files in the folder metadata.json names.
            relative = artifact.path(this.payload_file)
        except (ArtifactNotFoundError, CorruptArtifactError):
            relative = f"{artifact.dir}/{this.payload_file}"  # where it will be
        local = this.store.local_path(relative)
        return local if local is not None else f"{this.store.url.rstrip('/')}/{relative}"

    @property
    def v1_persist_hash(self) -> str:
        """1.x's ``persist_hash``: the md5 in its file name ``<payload_name>(<md5>)``."""
        from persistable._v1._md5 import v1_md5

        return v1_md5(self)  # type: ignore[arg-type]

    def _adopt_v1(self, key: str) -> tuple[Any] | None:
        """The payload adopted from a 1.x file of the same params (committed first), else None."""
        this: Persistable[Any, Any] = self  # type: ignore[assignment]
        if not self.adopt_v1_caches or not isinstance(this.store, LocalStore):
            return None
        return _adopt_function()(this, key)
