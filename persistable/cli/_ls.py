"""``persistable ls STORE [PAYLOAD_NAME...]``: what a store holds."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
)


@click.command("ls")
@store_argument()
@click.argument("payload_names", nargs=-1, metavar="[PAYLOAD_NAME]...")
@click.option(
    "-a", "--artifacts", is_flag=True, help="One row per artifact instead of per payload name."
)
@storage_options_option()
@json_option
def command(
    store: str,
    payload_names: tuple[str, ...],
    artifacts: bool,
    storage_option: tuple[str, ...],
    as_json: bool,
) -> None:
    """List the payload names of STORE (artifacts, size, newest), or the artifacts of some."""
    from persistable.artifact import list_artifacts
    from persistable.artifact._format import format_date, format_size, format_table

    opened = open_store(store, storage_option, read_only=True)
    listing = list_artifacts(opened, payload_names or None)
    if as_json:
        emit_json(listing.to_json())
        return
    if not artifacts and not payload_names:
        if not len(listing):
            click.echo(f"No artifacts in {opened.url}.")
            return
        click.echo(str(listing))
        return
    rows = [
        [
            info.ref,
            format_size(info.size),
            format_date(info.created),
            f"{info.user}@{info.host}" if info.user else "",
            info.error or "",
        ]
        for info in listing
    ]
    click.echo(format_table(["artifact", "size", "created", "by", ""], rows, right=(1,)))
