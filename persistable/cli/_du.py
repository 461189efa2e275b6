"""``persistable du STORE``: disk usage by payload name and of the internal areas."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
)


@click.command("du")
@store_argument()
@storage_options_option()
@json_option
def command(store: str, storage_option: tuple[str, ...], as_json: bool) -> None:
    """Bytes used per payload name, and by staging, quarantine, locks and leases."""
    from persistable.artifact import list_artifacts
    from persistable.artifact._format import format_size, format_table
    from persistable.artifact._leftovers import internal_usage

    opened = open_store(store, storage_option, read_only=True)
    listing = list_artifacts(opened)
    internal = internal_usage(opened)
    if as_json:
        emit_json(
            {
                "store": opened.url,
                "payload_names": {s.payload_name: s.size for s in listing.summaries()},
                "internal": internal,
                "total": listing.size + sum(internal.values()),
            }
        )
        return
    rows = [[s.payload_name, format_size(s.size), str(s.artifacts)] for s in listing.summaries()]
    rows += [[f".persistable/{name}", format_size(size), ""] for name, size in internal.items()]
    rows.append(["total", format_size(listing.size + sum(internal.values())), str(len(listing))])
    click.echo(format_table(["", "size", "artifacts"], rows, right=(1, 2)))
