"""Upstream payloads are used as stored: one changed in memory is not fed to a downstream.

A downstream's key names its upstream artifacts by key, so its payload must be computed
from exactly those artifacts. A payload held in memory can drift from its artifact
without any assignment (``arr = up.payload; arr -= arr.mean()``); computed from it, the
downstream artifact would be another input's result under this key, shared with every
colleague. Before a downstream runs its code, each upstream payload held in memory is
serialised again through its FileIO into a hash (no file is written) and compared with
the checksum in the upstream's ``metadata.json``. One that differs is dropped from
memory, so the downstream reads the stored artifact, with a WARNING naming it.

A FileIO whose output is not byte-for-byte reproducible gives a difference for an
unchanged payload: it is then reloaded too (correct, only slower), and the warning is
given only when the reloaded payload reproduces its bytes and the one in memory did not.
"""

from __future__ import annotations

import logging
from typing import IO, TYPE_CHECKING, Any, cast

from persistable._artifact import DiscardingWriter, HashingWriter
from persistable._hashing import BULK_ALGORITHM
from persistable.exceptions import PersistableError
from persistable.io._folder import FolderFileIO

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = ["use_stored_upstream_payloads"]


def _stored_record(upstream: Persistable[Any, Any], key: str) -> dict[str, Any] | None:
    try:
        metadata = upstream.store.read_metadata(upstream.payload_name, key)
    except PersistableError:
        return None  # not committed (generate(persist=False)): nothing to compare with
    record = metadata.get("files", {}).get(metadata.get("payload_file", upstream.payload_file))
    return record if isinstance(record, dict) and BULK_ALGORITHM in record else None


def _reproduces(upstream: Persistable[Any, Any], payload: Any, record: dict[str, Any]) -> bool:
    """Whether ``payload`` serialises to the bytes the artifact holds (by size and checksum)."""
    writer = HashingWriter(cast(IO[bytes], DiscardingWriter()))
    try:
        upstream.payload_io.save(payload, cast(IO[bytes], writer))
    except Exception:  # a payload that no longer saves is not the stored one
        return False
    written = writer.record
    return bool(
        written["size"] == record.get("size") and written[BULK_ALGORITHM] == record[BULK_ALGORITHM]
    )


def use_stored_upstream_payloads(
    downstream: Persistable[Any, Any],
    logger: logging.Logger,
    upstream_keys: list[str] | None = None,
) -> None:
    """Drop each upstream payload in memory that no longer is its stored artifact's payload.

    ``upstream_keys``: the current key of each tracked dependency, when the caller hashed
    them already (so a deep chain is not hashed again per node).
    """
    for index, upstream in enumerate(downstream.tracked_persistable_dependencies):
        state = getattr(upstream, "_payload_state", None)
        payload_io = upstream.payload_io
        if not upstream._has_payload or state is None:
            continue  # nothing in memory, or nothing known to compare it with
        if isinstance(payload_io, FolderFileIO) or payload_io.path_based:
            continue  # a folder payload is opened from the artifact; a 1.x IO writes only files
        key = state[2]
        current = upstream.persist_hash if upstream_keys is None else upstream_keys[index]
        if key != current:
            continue  # its params changed: payload loads the new key's artifact anyway
        record = _stored_record(upstream, key)
        if record is None or _reproduces(upstream, upstream._payload, record):
            continue
        upstream.reset_payload()
        if _reproduces(upstream, upstream.payload, record):
            logger.warning(
                "The payload of %s (key %s) held in memory was changed after it was loaded "
                "or generated (it no longer matches its artifact's checksum); %s is computed "
                "from the stored artifact, which is what its key names. Copy a payload "
                "before changing it in place.",
                upstream.payload_name,
                key,
                downstream.payload_name,
            )
