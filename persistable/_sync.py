"""``persistable.sync``: copy complete artifacts between stores (e.g. a colleague's S3 cache to a folder).

Artifacts keep their layout and keys on every store, so copying one is copying its
files: the files listed in ``metadata.json`` first, each checked against its size and
checksum while it streams, then ``metadata.json`` last through the destination's
commit, so an interrupted sync never leaves a partial artifact behind.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from persistable.artifact import Artifact
from persistable.exceptions import CorruptArtifactError
from persistable.store import Store, StoreLike, make_store

__all__ = ["SyncReport", "copy_artifact", "sync"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class SyncReport:
    """What :func:`sync` did (or would do, with ``dry_run=True``).

    Attributes
    ----------
    copied
        ``(payload_name, key)`` of the artifacts copied (or to copy, on a dry run).
    skipped
        Artifacts already present in the destination.
    failed
        Artifacts not copied, with the reason (a damaged source, or another writer
        committed the key in the destination first).
    bytes_copied
        Bytes of the copied artifacts' files, ``metadata.json`` included.
    dry_run
        Whether nothing was written.
    """

    copied: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    skipped: list[tuple[str, str]] = dataclasses.field(default_factory=list)
    failed: list[tuple[str, str, str]] = dataclasses.field(default_factory=list)
    bytes_copied: int = 0
    dry_run: bool = False

    @property
    def n_copied(self) -> int:
        """Number of artifacts copied."""
        return len(self.copied)

    @property
    def n_skipped(self) -> int:
        """Number of artifacts skipped because the destination had them."""
        return len(self.skipped)

    @property
    def ok(self) -> bool:
        """Whether every artifact was copied or already present."""
        return not self.failed

    def __str__(self) -> str:
        verb = "would copy" if self.dry_run else "copied"
        return (
            f"sync {verb} {self.n_copied} artifacts ({self.bytes_copied} bytes), skipped "
            f"{self.n_skipped} already present, {len(self.failed)} failed"
        )


def copy_artifact(
    src: Store, dst: Store, payload_name: str, key: str, *, verify: bool = True
) -> int | None:
    """Copy one committed artifact from ``src`` to ``dst`` (:meth:`Artifact.copy_to`)."""
    return Artifact(src, payload_name, key).copy_to(dst, verify=verify)


def sync(
    src: StoreLike,
    dst: StoreLike,
    *,
    payload_names: Iterable[str] | None = None,
    dry_run: bool = False,
    verify: bool = True,
    workers: int = 8,
    src_storage_options: dict[str, Any] | None = None,
    dst_storage_options: dict[str, Any] | None = None,
) -> SyncReport:
    """Copy the complete artifacts of ``src`` that ``dst`` lacks.

    Parameters
    ----------
    src, dst
        Stores, folders or URLs (``"s3://bucket/cache"``, ``"./cache"``...).
    payload_names
        Copy only these payload names (default: all).
    dry_run
        Only report what would be copied.
    verify
        Read every copied file back from ``dst`` and check its checksum (each file
        is also checked while it is copied).
    workers
        Artifacts copied at the same time (threads).
    src_storage_options, dst_storage_options
        fsspec options of URL stores (endpoint, profile, anon...).

    Returns
    -------
    SyncReport
        Counts of copied, skipped and failed artifacts and the bytes copied.

    Raises
    ------
    ReadOnlyStoreError
        ``dst`` cannot be written (checked before anything is copied).
    """
    source = (
        src
        if isinstance(src, Store)
        else make_store(src, storage_options=src_storage_options, read_only=True)
    )
    destination = make_store(dst, storage_options=dst_storage_options)
    if not dry_run:
        destination.check_writable()
    wanted = None if payload_names is None else set(payload_names)
    report = SyncReport(dry_run=dry_run)
    present = set(destination.iter_artifacts())  # one listing instead of a request per key
    todo: list[tuple[str, str]] = []
    for payload_name, key in source.iter_artifacts():
        if wanted is not None and payload_name not in wanted:
            continue
        if (payload_name, key) in present:
            report.skipped.append((payload_name, key))
        else:
            todo.append((payload_name, key))
    if dry_run:
        for payload_name, key in todo:
            report.copied.append((payload_name, key))
            report.bytes_copied += Artifact(source, payload_name, key).size
        return report

    def copy(artifact: tuple[str, str]) -> int | CorruptArtifactError | ValueError | None:
        try:
            return copy_artifact(source, destination, *artifact, verify=verify)
        except (CorruptArtifactError, ValueError) as error:
            return error

    # Object stores are latency-bound: copy several artifacts at once.
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        for (payload_name, key), outcome in zip(todo, pool.map(copy, todo), strict=True):
            if isinstance(outcome, Exception):
                logger.warning("Not copying %s key %s: %s", payload_name, key, outcome)
                report.failed.append((payload_name, key, str(outcome)))
            elif outcome is None:
                report.skipped.append((payload_name, key))
            else:
                logger.debug("Copied %s key %s (%d bytes)", payload_name, key, outcome)
                report.copied.append((payload_name, key))
                report.bytes_copied += outcome
    from persistable import _lineage_feed

    _lineage_feed.flush()  # what was copied, into the destination's lineage index
    logger.info("%s from %s to %s", report, source.url, destination.url)
    return report
