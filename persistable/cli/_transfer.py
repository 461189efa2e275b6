"""What ``push`` and ``pull`` share: copy complete artifacts between two stores (``persistable.sync``)."""

from __future__ import annotations

from collections.abc import Sequence

import click

from persistable.cli._common import emit_json, parse_storage_options, storage_options_option


def transfer(
    source: str,
    destination: str,
    *,
    payload_names: Sequence[str],
    source_options: Sequence[str],
    destination_options: Sequence[str],
    dry_run: bool,
    as_json: bool,
) -> None:
    """Run :func:`persistable.sync` and print its report; exit 1 when an artifact failed."""
    from persistable._sync import sync
    from persistable.cli._common import open_store

    src = open_store(source, source_options, read_only=True)
    dst_options = parse_storage_options(destination_options)
    report = sync(
        src,
        destination,
        payload_names=payload_names or None,
        dry_run=dry_run,
        dst_storage_options=dst_options or None,
    )
    if as_json:
        emit_json(
            {
                "from": src.url,
                "to": destination,
                "dry_run": report.dry_run,
                "copied": [f"{name}/{key}" for name, key in report.copied],
                "skipped": [f"{name}/{key}" for name, key in report.skipped],
                "failed": [{"ref": f"{n}/{k}", "reason": why} for n, k, why in report.failed],
                "bytes_copied": report.bytes_copied,
            }
        )
    else:
        for name, key, why in report.failed:
            click.echo(f"FAILED {name}/{key}: {why}", err=True)
        click.echo(str(report))
    if report.failed:
        raise SystemExit(1)


def transfer_options(function: click.decorators.FC) -> click.decorators.FC:
    """The options push and pull share."""
    for decorator in reversed(
        [
            click.option(
                "-p",
                "--payload-name",
                "payload_names",
                multiple=True,
                help="Only this payload name (repeatable).",
            ),
            click.option("-n", "--dry-run", is_flag=True, help="Only print what would be copied."),
            click.option("--json", "as_json", is_flag=True, help="Print JSON for scripts."),
        ]
    ):
        function = decorator(function)
    return function


def transfer_command(name: str, *, remote: str, example: str) -> click.Command:
    """The ``push`` or ``pull`` command: FROM TO; ``-o`` options belong to the ``remote`` side."""

    def run(
        source: str,
        destination: str,
        payload_names: tuple[str, ...],
        dry_run: bool,
        as_json: bool,
        storage_option: tuple[str, ...],
    ) -> None:
        transfer(
            source,
            destination,
            payload_names=payload_names,
            source_options=storage_option if remote == "FROM" else (),
            destination_options=storage_option if remote == "TO" else (),
            dry_run=dry_run,
            as_json=as_json,
        )

    run.__doc__ = (
        f"Copy the artifacts of FROM that TO lacks (e.g. {example}).\n\n"
        "Every file is checked against its checksum while it is copied and metadata.json\n"
        f"goes last, so an interrupted {name} leaves no partial artifact.\n"
    )
    decorated = storage_options_option(help_for=remote)(transfer_options(run))
    decorated = click.argument("destination", metavar="TO")(decorated)
    decorated = click.argument("source", metavar="FROM")(decorated)
    return click.command(name)(decorated)
