"""Why a step call would load or compute: the nearest existing artifact and what differs."""

from __future__ import annotations

import json
from typing import Any

from persistable._artifact import PARAMS_FILE
from persistable._persistable import Persistable

__all__ = ["explain"]

_MAX_SCANNED = 10_000


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def explain(persistable: Persistable[Any, Any]) -> str:
    """A readable text: the artifact exists (and where), or the nearest one and its differences."""
    name = persistable.payload_name
    key = persistable.persist_hash
    store = persistable.store
    if store.has_artifact(name, key):
        return f"{name} key {key} exists at {persistable.artifact_path}: a call loads it."
    current = persistable.params.to_dict()
    dependencies = persistable.dependency_keys()
    best: tuple[int, str, list[str]] | None = None
    keys = store.list_keys(name)[:_MAX_SCANNED]
    for other in keys:
        try:
            metadata = store.read_metadata(name, other)
            params = json.loads(store.read_bytes(f"{name}/{other}/{PARAMS_FILE}"))
        except (OSError, ValueError):
            continue
        old_dependencies = metadata.get("dependencies", {})
        lines = []
        for field in sorted(set(current) | (set(params) - set(old_dependencies))):
            old, new = params.get(field, "<absent>"), current.get(field, "<absent>")
            if old != new:
                lines.append(f"  argument {field}: {_short(old)} -> {_short(new)}")
        for role in sorted(set(dependencies) | set(old_dependencies)):
            old, new = old_dependencies.get(role), dependencies.get(role)
            if old != new:
                lines.append(f"  upstream {role}: key {_short(old)} -> {_short(new)}")
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
