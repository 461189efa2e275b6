"""``persistable diff STORE REF REF``: how two artifacts' params and provenance differ."""

from __future__ import annotations

from typing import Any

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
)


def _flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(tree, dict) and tree and "__type__" not in tree:
        flat: dict[str, Any] = {}
        for key, value in tree.items():
            flat.update(_flatten(value, f"{prefix}.{key}" if prefix else str(key)))
        return flat
    return {prefix: tree}


def diff_trees(first: Any, second: Any) -> list[tuple[str, Any, Any]]:
    """``(dotted path, first value, second value)`` of every leaf that differs."""
    left, right = _flatten(first), _flatten(second)
    missing = object()
    changes = []
    for path in sorted(set(left) | set(right)):
        a, b = left.get(path, missing), right.get(path, missing)
        if a != b:
            changes.append((path, None if a is missing else a, None if b is missing else b))
    return changes


@click.command("diff")
@store_argument()
@click.argument("first")
@click.argument("second")
@storage_options_option()
@json_option
def command(
    store: str, first: str, second: str, storage_option: tuple[str, ...], as_json: bool
) -> None:
    """Compare two artifacts: params, dependencies and code. Exit 1 when they differ."""
    import json

    from persistable.artifact import find_artifact

    opened = open_store(store, storage_option, read_only=True)
    a, b = find_artifact(opened, first), find_artifact(opened, second)
    sections = {
        "params": diff_trees(a.read_params(), b.read_params()),
        "dependencies": diff_trees(a.metadata.get("dependencies"), b.metadata.get("dependencies")),
        "code": diff_trees(a.metadata.get("code"), b.metadata.get("code")),
        "payload": diff_trees(
            {"payload_io": a.payload_io_name, "files": a.files.get(a.payload_file)},
            {"payload_io": b.payload_io_name, "files": b.files.get(b.payload_file)},
        ),
    }
    if as_json:
        emit_json(
            {
                "first": a.ref,
                "second": b.ref,
                "differences": {
                    name: [{"path": p, "first": x, "second": y} for p, x, y in changes]
                    for name, changes in sections.items()
                },
            }
        )
    else:
        click.echo(f"--- {a.ref}\n+++ {b.ref}")
        for name, changes in sections.items():
            for path, x, y in changes:
                click.echo(
                    f"{name}.{path}: {json.dumps(x, default=str)} -> {json.dumps(y, default=str)}"
                )
        if not any(sections.values()):
            click.echo("no differences")
    if any(sections.values()):
        raise SystemExit(1)
