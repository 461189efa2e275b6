"""Changed ``added_later`` defaults upstream: a digest of what the tracked tree left out of its keys.

An ``added_later`` field at its default is left out of the key, so that artifacts made
before the field existed keep their keys. If that default is edited later, the upstream
key does not move, and neither does any downstream key: a downstream artifact made from
the old default would load as if it came from the new one. ``metadata.json`` therefore
records, beside the artifact's own omitted defaults, one digest of those of every
persistable it tracks, transitively (``upstream_added_later``); a load compares it with
the digest of the current tree. Nothing is computed until some ``added_later()`` field
has been declared in the process.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from persistable import params as _params
from persistable._hashing import sha256_hex
from persistable._keys import dependency_order, tracked_dependencies

if TYPE_CHECKING:
    from persistable._persistable import Persistable

__all__ = ["changed_upstream", "upstream_digest"]


def _upstream_digests(root: Persistable[Any, Any]) -> dict[int, str | None]:
    """Per node upstream of ``root``, by id: the digest of the omitted defaults of it and of
    everything it tracks, or None when none of them omits any (walked without recursion;
    ``root`` itself, last in the order, is left out: its own are recorded apart)."""
    digests: dict[int, str | None] = {}
    for node in dependency_order(root)[:-1]:
        own = _params.omitted_defaults(node.params)
        below = [digests[id(dependency)] for dependency in tracked_dependencies(node)]
        if not own and all(digest is None for digest in below):
            digests[id(node)] = None
            continue
        data = json.dumps([own, below], sort_keys=True, separators=(",", ":"))
        digests[id(node)] = sha256_hex(data.encode("utf-8"))
    return digests


def upstream_digest(persistable: Persistable[Any, Any]) -> str | None:
    """The digest of the ``added_later`` defaults omitted anywhere upstream of ``persistable``
    (None when none is, or when no ``added_later()`` field exists in this process)."""
    if not _params._added_later_declared:
        return None
    dependencies = tracked_dependencies(persistable)
    if not dependencies:
        return None
    digests = _upstream_digests(persistable)
    below = [digests[id(dependency)] for dependency in dependencies]
    if all(digest is None for digest in below):
        return None
    data = json.dumps(below, separators=(",", ":"))
    return sha256_hex(data.encode("utf-8"))


def changed_upstream(persistable: Persistable[Any, Any], recorded: Any) -> list[str] | None:
    """None when ``recorded`` (metadata's ``upstream_added_later``) matches the current tree
    or is absent; else the labels of the upstream persistables that omit an added_later field."""
    if not isinstance(recorded, str) or upstream_digest(persistable) == recorded:
        return None
    suspects = [
        f"{node.payload_name} ({', '.join(sorted(omitted))})"
        for node in dependency_order(persistable)[:-1]
        if (omitted := _params.omitted_defaults(node.params))
    ]
    return suspects
