"""HTML views for notebooks (``_repr_html_``): an artifact, a store listing, a persistable.

Plain HTML tables with escaped text and no scripts or external styles, so they render
the same in Jupyter, VS Code and exported notebooks.
"""

from __future__ import annotations

import html
import json
from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

from persistable.artifact._format import format_date, format_size
from persistable.exceptions import PersistableError

if TYPE_CHECKING:
    from persistable.artifact._handle import Artifact
    from persistable.artifact._listing import StoreListing

__all__ = ["artifact_html", "fields_html", "listing_html", "persistable_html", "table_html"]

_STYLE = "border-collapse:collapse;font-family:monospace;font-size:90%"
_CELL = "padding:2px 8px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def table_html(header: Sequence[str], rows: Iterable[Sequence[object]], caption: str = "") -> str:
    """A small styled HTML table; every cell is escaped."""
    head = "".join(f'<th style="{_CELL}">{_e(cell)}</th>' for cell in header)
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{_e(cell)}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    title = (
        f"<caption style='text-align:left;font-weight:bold'>{_e(caption)}</caption>"
        if caption
        else ""
    )
    return f'<table style="{_STYLE}">{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def fields_html(rows: Iterable[Sequence[object]], caption: str) -> str:
    """A two-column table of named values (no header row; the names are row headers)."""
    body = "".join(
        f'<tr><th scope="row" style="{_CELL};font-weight:normal;color:#555">{_e(name)}</th>'
        f'<td style="{_CELL}">{_e(value)}</td></tr>'
        for name, value in rows
    )
    title = f"<caption style='text-align:left;font-weight:bold'>{_e(caption)}</caption>"
    return f'<table style="{_STYLE}">{title}<tbody>{body}</tbody></table>'


def _json_block(tree: Any) -> str:
    text = json.dumps(tree, indent=2, sort_keys=True, ensure_ascii=False, default=str)
    return f'<pre style="margin:0;font-size:90%">{_e(text)}</pre>'


def artifact_html(artifact: Artifact) -> str:
    """An artifact: where it is, its provenance, its files and its params."""
    try:
        metadata = artifact.metadata
        files = artifact.files
    except PersistableError as error:
        return table_html(["artifact", "problem"], [[artifact.ref, str(error)]], "Artifact")
    rows: list[list[object]] = [
        ["payload_name", artifact.payload_name],
        ["key", artifact.key],
        ["where", artifact.location],
        [
            "created",
            f"{format_date(artifact.created)} UTC by {metadata.get('user')}@{metadata.get('host')}",
        ],
        ["payload_io", artifact.payload_io_name or "-"],
        ["size", format_size(artifact.size)],
        ["upstream", ", ".join(f"{name}/{key[:12]}" for name, key in artifact.upstream()) or "-"],
    ]
    files_html = table_html(
        ["file", "size"],
        [[name, format_size(int(record["size"]))] for name, record in sorted(files.items())],
    )
    try:
        params = _json_block(artifact.read_params())
    except PersistableError as error:
        params = _e(error)
    return (
        fields_html(rows, f"Artifact {artifact.payload_name}")
        + f"<details><summary>files</summary>{files_html}</details>"
        + f"<details><summary>params</summary>{params}</details>"
    )


def listing_html(listing: StoreListing) -> str:
    """A store listing: one row per payload name."""
    rows = [
        [
            summary.payload_name,
            summary.artifacts,
            format_size(summary.size),
            format_date(summary.newest),
            summary.newest_by or "",
            summary.damaged or "",
        ]
        for summary in listing.summaries()
    ]
    return table_html(
        ["payload_name", "artifacts", "size", "newest", "by", "damaged"],
        rows,
        f"{listing.store.url}: {len(listing)} artifacts, {format_size(listing.size)}",
    )


def persistable_html(
    class_name: str, payload_name: str, key: str, params: Any, committed: bool, where: str
) -> str:
    """A persistable: payload name, key, params and whether its artifact is committed."""
    status = "committed" if committed else "missing"
    rows = [
        ["payload_name", payload_name],
        ["key", key],
        ["status", status],
        ["where", where],
    ]
    return (
        fields_html(rows, class_name)
        + f"<details><summary>params</summary>{_json_block(params)}</details>"
    )
