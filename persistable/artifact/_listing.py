"""What a store holds: every committed artifact with the facts its ``metadata.json`` records.

``persistable ls``, ``du`` and ``gc`` are built on :func:`list_artifacts`; it works on
every store (one listing, then one small read per artifact, in parallel on object
stores). An artifact whose ``metadata.json`` cannot be read is listed with the reason
in :attr:`ArtifactInfo.error` instead of being skipped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from persistable.artifact._handle import Artifact
from persistable.exceptions import PersistableError
from persistable.store._base import Store

__all__ = ["ArtifactInfo", "PayloadSummary", "StoreListing", "list_artifacts"]


@dataclasses.dataclass(frozen=True)
class ArtifactInfo:
    """One committed artifact as listed: where, how big, when and by whom.

    ``error`` is set (and the other facts may be missing) when its ``metadata.json``
    is damaged or of a newer scheme.
    """

    payload_name: str
    key: str
    size: int = 0
    created: str | None = None
    host: str | None = None
    user: str | None = None
    payload_io: str | None = None
    upstream: tuple[tuple[str, str], ...] = ()
    error: str | None = None

    @property
    def ref(self) -> str:
        """``payload_name/key``."""
        return f"{self.payload_name}/{self.key}"

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``--json`` output)."""
        record = dataclasses.asdict(self)
        record["upstream"] = [list(item) for item in self.upstream]
        return record


@dataclasses.dataclass(frozen=True)
class PayloadSummary:
    """The artifacts of one payload name, summed up."""

    payload_name: str
    artifacts: int
    size: int
    newest: str | None
    newest_by: str | None
    damaged: int

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict (``--json`` output)."""
        return dataclasses.asdict(self)


def _info(artifact: Artifact) -> ArtifactInfo:
    try:
        metadata = artifact.metadata
        size = artifact.size
        upstream = tuple(artifact.upstream())
    except PersistableError as error:
        return ArtifactInfo(artifact.payload_name, artifact.key, error=str(error))
    return ArtifactInfo(
        payload_name=artifact.payload_name,
        key=artifact.key,
        size=size,
        created=artifact.created,
        host=metadata.get("host") if isinstance(metadata.get("host"), str) else None,
        user=metadata.get("user") if isinstance(metadata.get("user"), str) else None,
        payload_io=artifact.payload_io_name,
        upstream=upstream,
    )


class StoreListing:
    """The artifacts of a store, sorted by payload name and key; renders as a table."""

    def __init__(self, store: Store, artifacts: Iterable[ArtifactInfo]) -> None:
        self.store = store
        self.artifacts: list[ArtifactInfo] = sorted(
            artifacts, key=lambda a: (a.payload_name, a.key)
        )

    def __iter__(self) -> Iterator[ArtifactInfo]:
        return iter(self.artifacts)

    def __len__(self) -> int:
        return len(self.artifacts)

    @property
    def size(self) -> int:
        """Bytes of every listed artifact."""
        return sum(info.size for info in self.artifacts)

    def payload_names(self) -> list[str]:
        """The payload names that hold at least one artifact."""
        return sorted({info.payload_name for info in self.artifacts})

    def summaries(self) -> list[PayloadSummary]:
        """One summary per payload name."""
        groups: dict[str, list[ArtifactInfo]] = {}
        for info in self.artifacts:
            groups.setdefault(info.payload_name, []).append(info)
        summaries = []
        for name, infos in sorted(groups.items()):
            dated = [info for info in infos if info.created]
            newest = max(dated, key=lambda info: info.created or "") if dated else None
            summaries.append(
                PayloadSummary(
                    payload_name=name,
                    artifacts=len(infos),
                    size=sum(info.size for info in infos),
                    newest=newest.created if newest else None,
                    newest_by=f"{newest.user}@{newest.host}" if newest else None,
                    damaged=sum(1 for info in infos if info.error),
                )
            )
        return summaries

    def to_json(self) -> dict[str, Any]:
        """A JSON-able dict: the store, the summaries and every artifact."""
        return {
            "store": self.store.url,
            "size": self.size,
            "payload_names": [summary.to_json() for summary in self.summaries()],
            "artifacts": [info.to_json() for info in self.artifacts],
        }

    def __str__(self) -> str:
        from persistable.artifact._format import format_summaries

        return format_summaries(self.summaries())

    def __repr__(self) -> str:
        return f"<StoreListing {self.store.url!r}: {len(self.artifacts)} artifacts>"

    def _repr_html_(self) -> str:
        from persistable.artifact._html import listing_html

        return listing_html(self)


def list_artifacts(
    store: Store, payload_names: Iterable[str] | None = None, *, workers: int = 16
) -> StoreListing:
    """Every committed artifact of ``store`` (or of some payload names) with its metadata.

    Parameters
    ----------
    store
        Any store.
    payload_names
        Only these payload names (default: all).
    workers
        Metadata files read at once on stores that are not on local disk.
    """
    wanted = None if payload_names is None else set(payload_names)
    handles = [
        Artifact(store, name, key)
        for name, key in store.iter_artifacts()
        if wanted is None or name in wanted
    ]
    if store.local_path("") is not None or len(handles) < 2:
        infos = [_info(handle) for handle in handles]
    else:
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            infos = list(pool.map(_info, handles))
    return StoreListing(store, infos)
