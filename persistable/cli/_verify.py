"""``persistable verify STORE [REF]...``: check every file against its checksum."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    storage_options_option,
    store_argument,
)


@click.command("verify")
@store_argument()
@click.argument("refs", nargs=-1, metavar="[REF]...")
@storage_options_option()
@json_option
def command(
    store: str, refs: tuple[str, ...], storage_option: tuple[str, ...], as_json: bool
) -> None:
    """Verify every artifact of STORE (or the REFs); exit 1 and list them when any is damaged.

    Nothing is changed: damaged artifacts stay where they are.
    """
    from concurrent.futures import ThreadPoolExecutor

    from persistable.artifact import Artifact, find_artifact

    opened = open_store(store, storage_option, read_only=True)
    if refs:
        artifacts = [find_artifact(opened, ref) for ref in refs]
    else:
        artifacts = [Artifact(opened, name, key) for name, key in opened.iter_artifacts()]
    workers = 1 if opened.local_path("") is not None else 8
    with ThreadPoolExecutor(max_workers=workers) as pool:
        damage = list(pool.map(lambda artifact: artifact.damage(), artifacts))
    damaged = [(a, why) for a, why in zip(artifacts, damage, strict=True) if why]
    if as_json:
        emit_json(
            {
                "store": opened.url,
                "checked": len(artifacts),
                "damaged": [{"ref": a.ref, "reason": why} for a, why in damaged],
            }
        )
    else:
        for artifact, why in damaged:
            click.echo(f"DAMAGED {artifact.ref}: {why}")
        click.echo(f"{len(artifacts)} artifacts checked, {len(damaged)} damaged.")
    if damaged:
        raise SystemExit(1)
