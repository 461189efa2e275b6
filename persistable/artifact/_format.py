"""Plain-text renderings shared by ``str()`` of listings and the command line: sizes, dates, tables."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from persistable.artifact._listing import PayloadSummary

__all__ = ["format_date", "format_size", "format_summaries", "format_table"]


def format_size(size: int) -> str:
    """``1.2 GiB``, ``3.1 MiB``, ``512 B``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")  # pragma: no cover


def format_date(iso: str | None) -> str:
    """``2026-12-01 10:31`` from an ISO 8601 UTC time, ``-`` when unknown."""
    if not iso:
        return "-"
    return iso.replace("T", " ")[:16]


def format_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[int] = ()
) -> str:
    """Columns padded to their widest cell; the columns in ``right`` are right-aligned."""
    widths = [len(cell) for cell in header]
    for row in rows:
        widths = [max(width, len(cell)) for width, cell in zip(widths, row, strict=True)]
    lines = []
    for row in [list(header), *rows]:
        cells = [
            cell.rjust(width) if index in right else cell.ljust(width)
            for index, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)


def format_summaries(summaries: Sequence[PayloadSummary]) -> str:
    """The ``persistable ls`` table: one row per payload name."""
    rows = [
        [
            summary.payload_name,
            str(summary.artifacts),
            format_size(summary.size),
            format_date(summary.newest),
            summary.newest_by or "",
        ]
        + ([f"{summary.damaged} damaged"] if summary.damaged else [""])
        for summary in summaries
    ]
    return format_table(["payload_name", "artifacts", "size", "newest", "", ""], rows, right=(1, 2))
