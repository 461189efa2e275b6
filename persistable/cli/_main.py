"""The ``persistable`` command group: the registry of subcommands, logging, errors and exit codes.

Exit codes scripts can rely on:

* 0: done (or, for a destructive command without ``--yes``, the plan was printed);
* 1: the command ran and found a problem (``verify``: damaged artifacts; ``diff``: the
  artifacts differ);
* 2: bad input: a usage error, an unknown store or reference, an ambiguous reference,
  a damaged ``metadata.json`` where one was needed;
* 3: the store refused: read-only, access denied, or a lock held too long.
"""

from __future__ import annotations

import importlib
import logging
import sys
from typing import Any

import click

__all__ = ["COMMANDS", "EXIT_CODES", "main"]

#: Every subcommand: name -> module defining ``command``. Add yours here (one line).
COMMANDS: dict[str, str] = {
    "diff": "persistable.cli._diff",
    "du": "persistable.cli._du",
    "flow": "persistable.cli._flow",
    "gc": "persistable.cli._gc",
    "graph": "persistable.cli._graph",
    "ls": "persistable.cli._ls",
    "memo": "persistable.cli._memo",
    "migrate-v1": "persistable.cli._migrate_v1",
    "publish": "persistable.cli._publish",
    "pull": "persistable.cli._pull",
    "push": "persistable.cli._push",
    "rm": "persistable.cli._rm",
    "show": "persistable.cli._show",
    "verify": "persistable.cli._verify",
}

#: What each exit code means (also in ``persistable --help``).
EXIT_CODES = {
    0: "done",
    1: "a problem was found (verify: damage, diff: differences)",
    2: "bad input (usage, unknown store or artifact, ambiguous reference)",
    3: "the store refused (read-only, access denied, lock timeout)",
}


class _Registry(click.Group):
    """Subcommands from :data:`COMMANDS`, each module imported when it is needed."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        command = importlib.import_module(module).command
        if not isinstance(command, click.Command):  # pragma: no cover - a broken module
            raise TypeError(f"{module}.command must be a click command, got {command!r}")
        return command

    def invoke(self, ctx: click.Context) -> Any:
        from persistable.cli._common import exit_code_for
        from persistable.exceptions import PersistableError

        try:
            return super().invoke(ctx)
        except PersistableError as error:
            click.echo(f"persistable: error: {error}", err=True)
            ctx.exit(exit_code_for(error))


def _configure_logging(verbose: int, quiet: bool) -> None:
    level = (
        logging.ERROR if quiet else [logging.WARNING, logging.INFO, logging.DEBUG][min(verbose, 2)]
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    import warnings

    logging.captureWarnings(True)
    warnings.simplefilter("default")


_EPILOG = (
    "Exit codes: " + "; ".join(f"{code} {meaning}" for code, meaning in EXIT_CODES.items()) + "."
)


@click.group(
    cls=_Registry, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]}
)
@click.version_option(package_name="persistable", message="persistable %(version)s")
@click.option("-v", "--verbose", count=True, help="Show INFO (-v) or DEBUG (-vv) messages.")
@click.option("-q", "--quiet", is_flag=True, help="Show errors only.")
def cli(verbose: int, quiet: bool) -> None:
    """Look at and look after the artifacts of a store (a folder or a URL such as s3://lab/cache).

    Artifacts are named payload_name/key-prefix (a prefix of the key is enough).
    """
    _configure_logging(verbose, quiet)


def main(argv: list[str] | None = None) -> None:
    """Run the command line (the ``persistable`` console script)."""
    cli.main(args=argv, prog_name="persistable")
