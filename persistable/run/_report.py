"""What a run did: one :class:`NodeResult` per node and the :class:`RunReport` summary table."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

__all__ = ["STATUSES", "NodeResult", "RunReport", "Status"]

Status = Literal["generated", "loaded", "skipped", "failed"]
#: Every status a node can end a run with, in report column order.
STATUSES: tuple[Status, ...] = ("generated", "loaded", "skipped", "failed")


@dataclass
class NodeResult:
    """How one node (one artifact) ended the run.

    ``generated``: this run committed it. ``loaded``: it was already committed (by an
    earlier run or by another worker while this one waited for the key's lock), so
    nothing was computed. ``skipped``: not attempted because an upstream node failed
    or the run was interrupted. ``failed``: generating it raised; ``error`` and
    ``traceback`` say why.
    """

    payload_name: str
    key: str
    status: Status
    #: Seconds spent on the node by its worker (None when it was not run).
    duration_s: float | None = None
    #: Why the node has this status (which upstream failed, "already in the store"...).
    reason: str = ""
    #: ``ExceptionType: message`` of a failure.
    error: str | None = None
    #: The formatted traceback of a failure, as text (exceptions need not pickle).
    traceback: str | None = None
    #: ``host:pid`` of the worker that ran the node.
    worker: str | None = None

    @property
    def label(self) -> str:
        """``payload_name`` and a short key."""
        _, _, digest = self.key.rpartition("-")
        return f"{self.payload_name}[{digest[:12]}]"


@dataclass
class _Row:
    counts: dict[Status, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    seconds: float = 0.0


@dataclass
class RunReport:
    """The outcome of :func:`persistable.run`: per node results and a per payload summary.

    ``print(report)`` shows a table of generated / loaded / skipped / failed nodes per
    ``payload_name`` with the time spent generating, followed by each failure's error
    and traceback; notebooks render the same table as HTML.
    """

    results: list[NodeResult]
    executor: str = "serial"
    wall_s: float = 0.0
    interrupted: bool = False

    def __iter__(self) -> Iterator[NodeResult]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def with_status(self, status: Status) -> list[NodeResult]:
        """The results that ended with ``status``."""
        return [result for result in self.results if result.status == status]

    @property
    def generated(self) -> list[NodeResult]:
        """Nodes this run generated and committed."""
        return self.with_status("generated")

    @property
    def loaded(self) -> list[NodeResult]:
        """Nodes that were already committed, so nothing was computed."""
        return self.with_status("loaded")

    @property
    def skipped(self) -> list[NodeResult]:
        """Nodes not attempted because an upstream failed or the run was interrupted."""
        return self.with_status("skipped")

    @property
    def failed(self) -> list[NodeResult]:
        """Nodes whose generation raised."""
        return self.with_status("failed")

    @property
    def ok(self) -> bool:
        """Whether every node is committed now (nothing failed, skipped or interrupted)."""
        return not self.interrupted and all(
            result.status in ("generated", "loaded") for result in self.results
        )

    def counts(self) -> dict[str, dict[Status, int]]:
        """Number of nodes per ``payload_name`` and status."""
        return {name: row.counts for name, row in self._rows().items()}

    def _rows(self) -> dict[str, _Row]:
        rows: dict[str, _Row] = {}
        for result in self.results:
            row = rows.setdefault(result.payload_name, _Row())
            row.counts[result.status] += 1
            if result.duration_s is not None:
                row.seconds += result.duration_s
        return rows

    def _title(self) -> str:
        state = " (interrupted)" if self.interrupted else ""
        return f"persistable.run: {len(self.results)} nodes in {self.wall_s:.2f} s on {self.executor}{state}"

    def _table(self) -> list[list[str]]:
        header = ["payload_name", *STATUSES, "time (s)"]
        table = [header]
        total = _Row()
        for name, row in self._rows().items():
            table.append([name, *(str(row.counts[s]) for s in STATUSES), f"{row.seconds:.2f}"])
            for status in STATUSES:
                total.counts[status] += row.counts[status]
            total.seconds += row.seconds
        if len(table) > 2:
            table.append(
                ["total", *(str(total.counts[s]) for s in STATUSES), f"{total.seconds:.2f}"]
            )
        return table

    def __str__(self) -> str:
        table = self._table()
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines = [self._title(), ""]
        for number, row in enumerate(table):
            cells = [row[0].ljust(widths[0])]
            cells += [cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)]
            lines.append("  ".join(cells).rstrip())
            if number == 0 or (number == len(table) - 2 and table[-1][0] == "total"):
                lines.append("  ".join("-" * width for width in widths))
        for result in self.failed:
            lines += ["", f"FAILED {result.label}: {result.error}"]
            if result.traceback:
                lines += ["    " + line for line in result.traceback.rstrip().splitlines()]
        skipped = self.skipped
        if skipped:
            reasons: dict[str, int] = {}
            for result in skipped:
                reasons[result.reason] = reasons.get(result.reason, 0) + 1
            lines.append("")
            lines += [f"skipped {count}: {reason}" for reason, count in reasons.items()]
        return "\n".join(lines)

    def __repr__(self) -> str:
        totals = {s: len(self.with_status(s)) for s in STATUSES}
        summary = ", ".join(f"{status}={count}" for status, count in totals.items())
        return f"RunReport({summary}, wall_s={self.wall_s:.2f}, executor={self.executor!r})"

    def _repr_html_(self) -> str:
        import html

        table = self._table()
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in table[0])
        body = "".join(
            "<tr>"
            + "".join(
                f'<td style="text-align:{"left" if i == 0 else "right"}">{html.escape(cell)}</td>'
                for i, cell in enumerate(row)
            )
            + "</tr>"
            for row in table[1:]
        )
        parts = [
            f"<div><p><b>{html.escape(self._title())}</b></p>",
            f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>",
        ]
        for result in self.failed:
            parts.append(
                f"<details><summary>FAILED {html.escape(result.label)}: "
                f"{html.escape(result.error or '')}</summary>"
                f"<pre>{html.escape(result.traceback or '')}</pre></details>"
            )
        parts.append("</div>")
        return "".join(parts)
