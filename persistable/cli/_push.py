"""``persistable push LOCAL REMOTE``: copy the artifacts REMOTE lacks (complete, verified)."""

from __future__ import annotations

import click

from persistable.cli._common import storage_options_option
from persistable.cli._transfer import transfer, transfer_options


@click.command("push")
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO")
@transfer_options
@storage_options_option(help_for="TO")
def command(
    source: str,
    destination: str,
    payload_names: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    storage_option: tuple[str, ...],
) -> None:
    """Copy the artifacts of FROM that TO lacks (e.g. ./cache to s3://lab/cache).

    Every file is checked against its checksum while it is copied and metadata.json
    goes last, so an interrupted push leaves no partial artifact.
    """
    transfer(
        source,
        destination,
        payload_names=payload_names,
        source_options=(),
        destination_options=storage_option,
        dry_run=dry_run,
        as_json=as_json,
    )
