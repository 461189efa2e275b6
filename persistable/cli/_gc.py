"""``persistable gc STORE SELECTOR... --yes``: delete old, big or unneeded artifacts and leftovers."""

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


@click.command("gc")
@store_argument()
@click.option("--older-than", metavar="AGE", help="Artifacts created more than AGE ago (30d, 12h).")
@click.option("--larger-than", metavar="SIZE", help="Artifacts bigger than SIZE (100MiB, 2GiB).")
@click.option(
    "--keep-last", type=click.IntRange(min=0), help="Keep the newest N of each payload name."
)
@click.option(
    "--keep-lineage-of",
    "keep_lineage_of",
    multiple=True,
    metavar="REF",
    help="Keep REF and everything upstream of it, delete the rest (repeatable).",
)
@click.option(
    "-p",
    "--payload-name",
    "payload_names",
    multiple=True,
    help="Only this payload name (repeatable).",
)
@click.option("--quarantine", "empty_quarantine", is_flag=True, help="Empty the quarantine.")
@click.option(
    "--leftovers",
    is_flag=True,
    help="Remove staging folders of dead processes, free lock files and old leases.",
)
@click.option(
    "--timeout",
    type=float,
    default=30.0,
    show_default=True,
    help="Seconds to wait for each key's lock.",
)
@storage_options_option()
@yes_option
@json_option
def command(
    store: str,
    older_than: str | None,
    larger_than: str | None,
    keep_last: int | None,
    keep_lineage_of: tuple[str, ...],
    payload_names: tuple[str, ...],
    empty_quarantine: bool,
    leftovers: bool,
    timeout: float,
    storage_option: tuple[str, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Delete the artifacts that match every selector; without --yes, only print the plan.

    A selector is needed: --older-than, --larger-than, --keep-last, --keep-lineage-of,
    --quarantine or --leftovers. Artifacts are deleted under their key's lock.
    """
    from persistable.artifact import Artifact, find_artifact, list_artifacts
    from persistable.artifact._format import format_size
    from persistable.artifact._leftovers import empty_quarantine as empty
    from persistable.artifact._leftovers import remove_leftovers
    from persistable.artifact._lineage import lineage
    from persistable.artifact._select import parse_age, parse_size, select

    selects = older_than or larger_than or keep_last is not None or keep_lineage_of
    if not (selects or empty_quarantine or leftovers):
        raise click.UsageError(
            "gc needs a selector (nothing was changed): --older-than AGE, --larger-than SIZE, "
            "--keep-last N, --keep-lineage-of REF, --quarantine or --leftovers."
        )
    try:
        age = parse_age(older_than) if older_than else None
        size = parse_size(larger_than) if larger_than else None
    except ValueError as error:
        raise click.BadParameter(str(error)) from error
    opened = open_store(store, storage_option, read_only=False)
    opened.check_writable()
    plan = []
    kept: dict[str, str] = {}
    if selects:
        if keep_lineage_of:
            graph = lineage([find_artifact(opened, ref) for ref in keep_lineage_of])
            protected = set(graph.nodes)
        else:
            protected = set()
        listing = list_artifacts(opened, payload_names or None)
        selection = select(
            listing.artifacts, older_than=age, larger_than=size, keep_last=keep_last, keep=protected
        )
        plan, kept = selection.delete, selection.keep
    deleted: list[str] = []
    if yes:
        for info in plan:
            if Artifact(opened, info.payload_name, info.key).delete(timeout=timeout):
                deleted.append(info.ref)
    quarantined = empty(opened, dry_run=not yes) if empty_quarantine else []
    removed = remove_leftovers(opened, dry_run=not yes) if leftovers else []
    if as_json:
        emit_json(
            {
                "store": opened.url,
                "dry_run": not yes,
                "artifacts": [{"ref": info.ref, "size": info.size} for info in plan],
                "deleted": deleted,
                "kept": kept,
                "quarantine": quarantined,
                "leftovers": removed,
            }
        )
        return
    verb = "deleted" if yes else "would delete"
    for info in plan:
        click.echo(f"{verb} {info.ref} ({format_size(info.size)}, created {info.created})")
    for name in quarantined:
        click.echo(f"{verb} quarantined {name}")
    for path in removed:
        click.echo(f"{verb} leftover {path}")
    total = sum(info.size for info in plan)
    click.echo(
        f"{verb}: {len(plan)} artifacts ({format_size(total)}), {len(quarantined)} quarantined "
        f"folders, {len(removed)} leftovers; kept {len(kept)} that matched."
    )
    if not yes:
        click.echo("Nothing was deleted; run again with --yes to delete.")
