"""``persistable publish STORE REF DESTINATION --name NAME``: a dataset artifact as a versioned package."""

from __future__ import annotations

import click

from persistable.cli._common import (
    emit_json,
    json_option,
    open_store,
    parse_storage_options,
    storage_options_option,
    store_argument,
)


@click.command("publish")
@store_argument()
@click.argument("ref", metavar="REF")
@click.argument("destination", metavar="DESTINATION")
@click.option("--name", "name", required=True, help="Package name, e.g. lab/cell-dataset.")
@click.option(
    "--allow-dirty",
    is_flag=True,
    help="Publish although the git tree has uncommitted or unpushed changes (the README says so).",
)
@click.option("--readme", "readme", default=None, help="Text added to the package README.")
@click.option(
    "--repository",
    default=".",
    show_default=True,
    help="A folder inside the git repository of the code that made the dataset.",
)
@storage_options_option()
@click.option(
    "--destination-option",
    "destination_option",
    multiple=True,
    metavar="KEY=VALUE",
    help="fsspec option for DESTINATION (repeatable), like -o for STORE.",
)
@json_option
def command(
    store: str,
    ref: str,
    destination: str,
    name: str,
    allow_dirty: bool,
    readme: str | None,
    repository: str,
    storage_option: tuple[str, ...],
    destination_option: tuple[str, ...],
    as_json: bool,
) -> None:
    """Publish the dataset artifact REF of STORE to DESTINATION as package NAME.

    The package holds the manifest, the files, params and lineage, and a README with the
    code's git provenance; its version is the top_hash of its contents. A dirty or
    unpushed git tree is refused unless --allow-dirty.
    """
    from persistable.artifact import find_artifact
    from persistable.datasets import publish_artifact

    opened = open_store(store, storage_option, read_only=True)
    artifact = find_artifact(opened, ref)
    package = publish_artifact(
        opened,
        artifact.payload_name,
        artifact.key,
        destination,
        name,
        allow_dirty=allow_dirty,
        readme=readme,
        repository=repository,
        storage_options=parse_storage_options(destination_option) or None,
    )
    if as_json:
        emit_json({"name": package.name, "version": package.version, "location": package.location})
    else:
        click.echo(f"Published {package.name} version {package.version} at {package.location}")
