"""``persistable memo``: memoize a command line (the options are in :mod:`persistable.steps._memo_cli`)."""

from __future__ import annotations

import sys

import click

__all__ = ["command"]


def _raw_arguments(args: tuple[str, ...]) -> list[str]:
    """The arguments as typed: click drops a ``--`` that directly follows an option."""
    given = list(args)
    if "memo" in sys.argv:
        raw = sys.argv[sys.argv.index("memo") + 1 :]
        if [token for token in raw if token != "--"] == [token for token in given if token != "--"]:
            return raw
    return given


@click.command(
    "memo",
    context_settings={
        "ignore_unknown_options": True,
        "allow_interspersed_args": False,
        "help_option_names": [],
    },
    short_help="Run a command unless a memoized run of it exists.",
)
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def command(args: tuple[str, ...]) -> None:
    """Run a command unless a memoized run of the same executable, scripts and inputs exists.

    persistable memo [-c DEPENDENCY ...] [-o OUTPUT ...] -d DIR [-n NAME] -- COMMAND ARGS...
    (``persistable memo -h`` lists every option). Exits with the command's exit code.
    """
    from persistable.steps._memo_cli import main

    tokens = _raw_arguments(args)
    if tokens in (["-h"], ["--help"]):
        tokens = ["--help", "--"]
    sys.exit(main(tokens))
