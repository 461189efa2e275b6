"""``persistable pull REMOTE LOCAL``: copy the artifacts LOCAL lacks (complete, verified)."""

from __future__ import annotations

import click

from persistable.cli._common import storage_options_option
from persistable.cli._transfer import transfer, transfer_options


@click.command("pull")
@click.argument("source", metavar="FROM")
@click.argument("destination", metavar="TO")
@transfer_options
@storage_options_option(help_for="FROM")
def command(
    source: str,
    destination: str,
    payload_names: tuple[str, ...],
    dry_run: bool,
    as_json: bool,
    storage_option: tuple[str, ...],
) -> None:
    """Copy the artifacts of FROM that TO lacks (e.g. s3://lab/cache to ./cache).

    Every file is checked against its checksum while it is copied and metadata.json
    goes last, so an interrupted pull leaves no partial artifact.
    """
    transfer(
        source,
        destination,
        payload_names=payload_names,
        source_options=storage_option,
        destination_options=(),
        dry_run=dry_run,
        as_json=as_json,
    )
