"""``persistable graph STORE REF...``: the lineage of artifacts (text tree, Mermaid, dot or SVG)."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
)


@click.command("graph")
@store_argument()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option(
    "-f",
    "--format",
    "output_format",
    type=click.Choice(["text", "mermaid", "dot", "svg"]),
    default="text",
    show_default=True,
    help="svg uses Graphviz's dot program when installed, else a simple drawing.",
)
@storage_options_option()
@json_option
def command(
    store: str,
    refs: tuple[str, ...],
    output_format: str,
    storage_option: tuple[str, ...],
    as_json: bool,
) -> None:
    """Show REF... and everything upstream of them, followed by key through metadata.json."""
    from persistable.artifact import find_artifact
    from persistable.artifact._lineage import lineage

    opened = open_store(store, storage_option, read_only=True)
    graph = lineage([find_artifact(opened, ref) for ref in refs])
    if as_json:
        emit_json(
            {
                "roots": graph.roots,
                "nodes": graph.nodes,
                "edges": graph.edges,
                "missing": sorted(graph.missing),
            }
        )
        return
    render = {
        "text": graph.to_text,
        "mermaid": graph.to_mermaid,
        "dot": graph.to_dot,
        "svg": graph.to_svg,
    }[output_format]
    click.echo(render())
