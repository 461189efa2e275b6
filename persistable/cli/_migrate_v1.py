"""``persistable migrate-v1 DATA_DIR --module M [--adopt]``: what of a 1.x cache can be adopted."""

from __future__ import annotations

import click

from persistable.cli._common import json_option


@click.command("migrate-v1")
@click.argument("data_dir", type=click.Path(file_okay=False), metavar="DATA_DIR")
@click.option(
    "-m",
    "--module",
    "modules",
    multiple=True,
    metavar="MODULE",
    help="Module (dotted name or .py file) defining the persistable classes; repeatable.",
)
@click.option("--adopt", is_flag=True, help="Commit every adoptable 1.x file as an artifact.")
@json_option
def command(data_dir: str, modules: tuple[str, ...], adopt: bool, as_json: bool) -> None:
    """Report the persistable 1.x files of DATA_DIR: adoptable, not (and why), already adopted.

    With --adopt each adoptable file is committed as an artifact; the 1.x files are never
    changed. Exits 1 when some 1.x file cannot be adopted.
    """
    import dataclasses

    from persistable.cli._common import emit_json
    from persistable.migration import classes_in_modules, migrate_v1

    try:
        classes = classes_in_modules(modules)
    except ImportError as error:
        raise click.UsageError(f"cannot import the --module given: {error}") from None
    try:
        report = migrate_v1(data_dir, classes, adopt=adopt)
    except NotADirectoryError as error:
        raise click.UsageError(str(error)) from None
    if as_json:
        emit_json(
            {
                "data_dir": report.data_dir,
                "entries": [dataclasses.asdict(e) for e in report.entries],
            }
        )
    else:
        click.echo(str(report))
    if report.with_status("not adoptable"):
        raise SystemExit(1)
