"""Why a step call would load or compute: the nearest existing artifact and what differs."""

from __future__ import annotations

import json
from typing import Any

from persistable._artifact import PARAMS_FILE
from persistable._persistable import Persistable

__all__ = ["explain"]

_MAX_SCANNED = 10_000
_CONTENT_TYPES = ("file", "directory")


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def _keyed(value: Any) -> Any:
    """``value`` as the key sees it: File and Directory entries without their (displayed) path."""
    if isinstance(value, dict):
        if value.get("__type__") in _CONTENT_TYPES:
            return {name: item for name, item in value.items() if name != "path"}
        return {name: _keyed(item) for name, item in value.items()}
    if isinstance(value, list):
        return [_keyed(item) for item in value]
    return value


def explain(persistable: Persistable[Any, Any]) -> str:
    """A readable text: the artifact exists (and where), or the nearest one and its differences.

    Compares the call's ``params.json`` entries (arguments, and the payload name and key
    of each upstream) with those of every artifact of the same payload name.
    """
    name = persistable.payload_name
    key = persistable.persist_hash
    store = persistable.store
    if store.has_artifact(name, key):
        return f"{name} key {key} exists at {persistable.artifact_path}: a call loads it."
    current = persistable.lineage()
    roles = set(persistable.dependency_keys())
    best: tuple[int, str, list[str]] | None = None
    keys = store.list_keys(name)[:_MAX_SCANNED]
    for other in keys:
        try:
            recorded = json.loads(store.read_bytes(f"{name}/{other}/{PARAMS_FILE}"))
        except (OSError, ValueError):
            continue
        if not isinstance(recorded, dict):
            continue
        lines = []
        for entry in sorted(set(current) | set(recorded)):
            old, new = recorded.get(entry, "<absent>"), current.get(entry, "<absent>")
            if _keyed(old) != _keyed(new):
                kind = "upstream" if entry in roles else "argument"
                lines.append(f"  {kind} {entry}: {_short(old)} -> {_short(new)}")
        if not lines:
            lines.append("  the same arguments and upstream keys: the code or version differs")
        if best is None or len(lines) < best[0]:
            best = (len(lines), other, lines)
    if best is None:
        return f"No artifact for {name} key {key}, and no other {name} artifact in {store.url!r}."
    return (
        f"No artifact for {name} key {key}; the nearest of {len(keys)} existing {name} "
        f"artifacts ({best[1]}) differs in:\n" + "\n".join(best[2])
    )
