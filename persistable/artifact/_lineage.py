"""Lineage: an artifact and everything upstream of it, followed by key through ``metadata.json``.

Each artifact records the payload name and key of its tracked dependencies
(``upstream``; older artifacts only the keys by role), so the whole upstream graph of
an artifact is rebuilt from the store alone, without the classes that wrote it.
Renders as a text tree, Mermaid, Graphviz ``dot``, and SVG (through the ``dot``
program when it is installed, otherwise a simple layered drawing of our own).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from persistable.artifact._handle import Artifact
from persistable.exceptions import PersistableError
from persistable.store._base import Store

__all__ = ["LineageGraph", "lineage"]


@dataclasses.dataclass(repr=False)
class LineageGraph:
    """Nodes (``payload_name/key``) and edges (downstream -> upstream) of a lineage.

    ``missing`` holds the nodes recorded as dependencies that the store does not have.
    """

    store: Store
    roots: list[str]
    edges: dict[str, list[str]]
    missing: set[str]

    @property
    def nodes(self) -> list[str]:
        """Every node, roots first, then upstream in breadth-first order."""
        seen: list[str] = []
        pending = list(self.roots)
        while pending:
            node = pending.pop(0)
            if node in seen:
                continue
            seen.append(node)
            pending.extend(self.edges.get(node, []))
        return seen

    @staticmethod
    def label(node: str) -> str:
        """``payload_name/k1-3f9c2a1b`` (a short key)."""
        name, _, key = node.partition("/")
        return f"{name}/{key[:11]}"

    def to_text(self) -> str:
        """An indented tree, downstream at the top; a node seen before is marked ``(see above)``."""
        lines: list[str] = []
        shown: set[str] = set()

        def walk(node: str, prefix: str, last: bool, top: bool) -> None:
            branch = "" if top else ("└── " if last else "├── ")
            tail = "  (missing)" if node in self.missing else ""
            again = "  (see above)" if node in shown and self.edges.get(node) else ""
            lines.append(f"{prefix}{branch}{self.label(node)}{tail}{again}")
            if again:
                return
            shown.add(node)
            children = self.edges.get(node, [])
            for index, child in enumerate(children):
                extension = "" if top else ("    " if last else "│   ")
                walk(child, prefix + extension, index == len(children) - 1, False)

        for root in self.roots:
            walk(root, "", True, True)
        return "\n".join(lines)

    def to_mermaid(self) -> str:
        """A Mermaid ``graph BT`` (upstream at the top, arrows pointing downstream)."""
        ids = {node: f"n{index}" for index, node in enumerate(self.nodes)}
        lines = ["graph BT"]
        for node, identifier in ids.items():
            lines.append(f'    {identifier}["{self.label(node)}"]')
        for node, upstream in self.edges.items():
            for parent in upstream:
                lines.append(f"    {ids[parent]} --> {ids[node]}")
        return "\n".join(lines)

    def to_dot(self) -> str:
        """Graphviz ``dot`` source."""
        ids = {node: f"n{index}" for index, node in enumerate(self.nodes)}
        lines = ["digraph lineage {", '  node [shape=box, fontname="monospace", fontsize=10];']
        for node, identifier in ids.items():
            style = ', style="dashed"' if node in self.missing else ""
            lines.append(f'  {identifier} [label="{self.label(node)}"{style}];')
        for node, upstream in self.edges.items():
            for parent in upstream:
                lines.append(f"  {ids[parent]} -> {ids[node]};")
        lines.append("}")
        return "\n".join(lines)

    def to_svg(self) -> str:
        """SVG through Graphviz's ``dot`` when installed, else a layered drawing of our own."""
        import shutil  # here: `import persistable` imports this module
        import subprocess

        dot = shutil.which("dot")
        if dot is not None:
            try:
                completed = subprocess.run(
                    [dot, "-Tsvg"],
                    input=self.to_dot(),
                    capture_output=True,
                    text=True,
                    timeout=60,
                    check=True,
                )
            except (OSError, subprocess.SubprocessError):
                pass
            else:
                svg = completed.stdout
                return svg[svg.find("<svg") :] if "<svg" in svg else svg
        return self._fallback_svg()

    def _fallback_svg(self) -> str:
        # Layer = longest distance from a root; upstream layers are drawn above.
        depth: dict[str, int] = {}
        for node in self.nodes:
            depth.setdefault(node, 0)
        changed = True
        while changed:
            changed = False
            for node, upstream in self.edges.items():
                for parent in upstream:
                    if depth[parent] < depth[node] + 1 and depth[node] + 1 <= len(depth):
                        depth[parent] = depth[node] + 1
                        changed = True
        layers: dict[int, list[str]] = {}
        for node in self.nodes:
            layers.setdefault(depth[node], []).append(node)
        # Boxes as wide as the longest label (monospace 11px: about 6.7px a character).
        longest = max((len(self.label(node)) for node in self.nodes), default=0)
        width, height, gap_x, gap_y = max(190, 16 + (longest * 67 + 9) // 10), 28, 20, 40
        top = max(layers) if layers else 0
        position: dict[str, tuple[int, int]] = {}
        for level, members in layers.items():
            for index, node in enumerate(members):
                position[node] = (
                    10 + index * (width + gap_x),
                    10 + (top - level) * (height + gap_y),
                )
        total_w = 20 + max(len(m) for m in layers.values()) * (width + gap_x) if layers else 40
        total_h = 20 + (top + 1) * (height + gap_y)
        import hashlib
        import html

        # One notebook page shows many graphs: the arrow's id must be this graph's own.
        arrow = "arrow-" + hashlib.sha256(repr(sorted(position.items())).encode()).hexdigest()[:12]
        parts = [
            f'<svg xmlns="http://www.w3.org/2000/svg" width="{total_w}" height="{total_h}" '
            f'viewBox="0 0 {total_w} {total_h}" font-family="monospace" font-size="11">',
            f'<defs><marker id="{arrow}" markerWidth="8" markerHeight="8" refX="8" refY="4" '
            'orient="auto"><path d="M0,0 L8,4 L0,8 z" fill="#555"/></marker></defs>',
        ]
        for node, upstream in self.edges.items():
            x2, y2 = position[node]
            for parent in upstream:
                x1, y1 = position[parent]
                parts.append(
                    f'<line x1="{x1 + width // 2}" y1="{y1 + height}" x2="{x2 + width // 2}" '
                    f'y2="{y2}" stroke="#555" marker-end="url(#{arrow})"/>'
                )
        for node, (x, y) in position.items():
            dash = ' stroke-dasharray="4,3"' if node in self.missing else ""
            parts.append(
                f'<rect x="{x}" y="{y}" width="{width}" height="{height}" rx="4" '
                f'fill="#f4f6fa" stroke="#345"{dash}/>'
                f'<text x="{x + 8}" y="{y + 18}">{html.escape(self.label(node))}</text>'
            )
        parts.append("</svg>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.to_svg()

    def __repr__(self) -> str:
        roots = ", ".join(self.label(root) for root in self.roots)
        return f"<LineageGraph of {roots}: {len(self.nodes)} artifacts in {self.store.url!r}>"

    def __str__(self) -> str:
        return self.to_text()


def _resolve(store: Store, role: str, key: str, names: list[str] | None) -> tuple[str, str]:
    """The ``(payload_name, key)`` of a recorded dependency, also for roles that are not payload names."""
    if store.has_artifact(role, key):
        return role, key
    for name in names or []:
        if store.has_artifact(name, key):
            return name, key
    return role, key


def lineage(artifacts: Iterable[Artifact]) -> LineageGraph:
    """The upstream graph of one or more artifacts of one store.

    Raises
    ------
    ValueError
        The artifacts are in different stores.
    """
    roots = list(artifacts)
    if not roots:
        raise ValueError("lineage() needs at least one artifact.")
    store = roots[0].store
    if any(artifact.store.url != store.url for artifact in roots):
        raise ValueError("lineage() follows artifacts of one store; pass artifacts of one store.")
    edges: dict[str, list[str]] = {}
    missing: set[str] = set()
    names: list[str] | None = None
    pending = list(roots)
    seen: set[str] = set()
    while pending:
        artifact = pending.pop()
        if artifact.ref in seen:
            continue
        seen.add(artifact.ref)
        try:
            recorded = artifact.upstream()
            explicit = isinstance(artifact.metadata.get("upstream"), list)
        except PersistableError:
            missing.add(artifact.ref)
            continue
        upstream = []
        for role, key in recorded:
            if not explicit:
                if names is None:
                    names = store.list_payload_names()
                role, key = _resolve(store, role, key, names)
            parent = Artifact(store, role, key)
            upstream.append(parent.ref)
            if parent.exists():
                pending.append(parent)
            else:
                missing.add(parent.ref)
        edges[artifact.ref] = upstream
    return LineageGraph(store, [artifact.ref for artifact in roots], edges, missing)
