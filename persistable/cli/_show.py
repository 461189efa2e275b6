"""``persistable show STORE REF``: one artifact's provenance, files, params and log."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
)


@click.command("show")
@store_argument()
@click.argument("ref")
@click.option("--log", "show_log", is_flag=True, help="Also print the generation log.")
@storage_options_option()
@json_option
def command(
    store: str, ref: str, show_log: bool, storage_option: tuple[str, ...], as_json: bool
) -> None:
    """Show the artifact REF (payload_name/key-prefix): metadata, files, params."""
    import json

    from persistable.artifact import find_artifact
    from persistable.artifact._format import format_date, format_size, format_table

    artifact = find_artifact(open_store(store, storage_option, read_only=True), ref)
    metadata = artifact.metadata
    params = artifact.read_params()
    if as_json:
        document = {
            "payload_name": artifact.payload_name,
            "key": artifact.key,
            "location": str(artifact.location),
            "metadata": metadata,
            "params": params,
        }
        if show_log:
            document["log"] = artifact.read_log()
        emit_json(document)
        return
    recorded = metadata.get("code")
    code: dict[str, object] = recorded if isinstance(recorded, dict) else {}
    rows = [
        ["artifact", artifact.ref],
        ["where", str(artifact.location)],
        ["created", f"{format_date(artifact.created)} UTC"],
        ["by", f"{metadata.get('user')}@{metadata.get('host')} (pid {metadata.get('pid')})"],
        ["class", str(code.get("class", "-"))],
        ["payload_io", artifact.payload_io_name or "-"],
        ["duration", f"{metadata.get('generation_duration_s') or 0:.3f} s"],
        ["size", format_size(artifact.size)],
    ]
    for name, key in artifact.upstream():
        rows.append(["upstream", f"{name}/{key}"])
    click.echo(format_table(["", ""], rows).split("\n", 1)[1])
    folder = metadata.get("files_folder")
    click.echo(f"files (in {folder}/, a replace's folder):" if folder else "files:")
    for name, record in sorted(artifact.files.items()):
        click.echo(f"  {name}  {format_size(int(record['size']))}")
    click.echo("params:")
    click.echo("  " + json.dumps(params, indent=2, sort_keys=True).replace("\n", "\n  "))
    if show_log:
        click.echo("log:")
        click.echo(artifact.read_log().rstrip("\n"))
