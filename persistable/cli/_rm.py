"""``persistable rm STORE REF... --yes``: delete artifacts (under each key's lock)."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
    yes_option,
)


@click.command("rm")
@store_argument()
@click.argument("refs", nargs=-1, required=True, metavar="REF...")
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for a process that is generating the artifact; then refuse.",
)
@storage_options_option()
@yes_option
@json_option
def command(
    store: str,
    refs: tuple[str, ...],
    timeout: float,
    storage_option: tuple[str, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Delete the artifacts REF...; without --yes, only print what would be deleted."""
    from persistable.artifact import find_artifact
    from persistable.artifact._format import format_size

    opened = open_store(store, storage_option, read_only=False)
    opened.check_writable()
    artifacts = [find_artifact(opened, ref) for ref in refs]  # all resolved before any change
    sizes = {artifact.ref: artifact.size for artifact in artifacts}
    deleted = []
    if yes:
        for artifact in artifacts:
            if artifact.delete(timeout=timeout):
                deleted.append(artifact.ref)
    if as_json:
        emit_json(
            {
                "store": opened.url,
                "dry_run": not yes,
                "artifacts": [{"ref": ref, "size": size} for ref, size in sizes.items()],
                "deleted": deleted,
            }
        )
        return
    verb = "deleted" if yes else "would delete"
    for ref, size in sizes.items():
        click.echo(f"{verb} {ref} ({format_size(size)})")
    if not yes:
        click.echo("Nothing was deleted; run again with --yes to delete.")
