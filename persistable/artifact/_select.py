"""Which artifacts ``gc`` deletes: by age, size, the newest N per payload name, and lineage."""

from __future__ import annotations

import dataclasses
import datetime as _dt
import re

from persistable.artifact._listing import ArtifactInfo

__all__ = ["Selection", "parse_age", "parse_size", "select"]

_AGE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")
_AGE_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?i?b?)\s*$", re.IGNORECASE)
_SIZE_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}


def parse_age(text: str) -> float:
    """``"30d"`` -> seconds (units s, m, h, d, w)."""
    match = _AGE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not an age; write e.g. 30d, 12h, 90m or 2w.")
    return float(match.group(1)) * _AGE_UNITS[match.group(2)]


def parse_size(text: str) -> int:
    """``"100MiB"`` / ``"2G"`` / ``"512"`` -> bytes (binary units)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size; write e.g. 100MiB, 2GiB or 512.")
    unit = match.group(2).lower().rstrip("b").rstrip("i")
    return int(float(match.group(1)) * _SIZE_UNITS[unit])


@dataclasses.dataclass
class Selection:
    """The outcome of :func:`select`: what is deleted, what is kept and why."""

    delete: list[ArtifactInfo]
    keep: dict[str, str]


def _created(info: ArtifactInfo) -> _dt.datetime | None:
    if not info.created:
        return None
    try:
        stamp = _dt.datetime.fromisoformat(info.created)
    except ValueError:
        return None
    return stamp if stamp.tzinfo else stamp.replace(tzinfo=_dt.timezone.utc)


def select(
    artifacts: list[ArtifactInfo],
    *,
    older_than: float | None = None,
    larger_than: int | None = None,
    keep_last: int | None = None,
    keep: set[str] | None = None,
    now: _dt.datetime | None = None,
) -> Selection:
    """Artifacts matching every given criterion, less the protected ones.

    ``older_than`` (seconds) and ``larger_than`` (bytes) narrow the candidates;
    ``keep_last`` keeps the newest N of each payload name and ``keep`` the given refs
    (e.g. a lineage). Artifacts whose metadata is damaged are never selected: verify
    them first.
    """
    now = now or _dt.datetime.now(_dt.timezone.utc)
    kept: dict[str, str] = {}
    newest: set[str] = set()
    if keep_last is not None:
        groups: dict[str, list[ArtifactInfo]] = {}
        for info in artifacts:
            groups.setdefault(info.payload_name, []).append(info)
        for infos in groups.values():
            infos.sort(key=lambda info: info.created or "", reverse=True)
            newest.update(info.ref for info in infos[:keep_last])
    chosen = []
    for info in artifacts:
        if info.error:
            kept[info.ref] = "damaged metadata (run verify)"
            continue
        created = _created(info)
        if older_than is not None and (
            created is None or (now - created).total_seconds() <= older_than
        ):
            continue
        if larger_than is not None and info.size <= larger_than:
            continue
        if info.ref in newest:
            kept[info.ref] = f"among the newest {keep_last} of {info.payload_name}"
            continue
        if keep and info.ref in keep:
            kept[info.ref] = "in the lineage kept"
            continue
        chosen.append(info)
    return Selection(chosen, kept)
