"""``persistable memo``: memoize a command line (memori's ``memori`` script, fixed).

::

    persistable memo [-c DEPENDENCY ...] [-o OUTPUT ...] -d DIR [-n NAME] -- COMMAND ARGS...
    persistable memo -d DIR -p N --arg0 A B --arg_output0 OUT0 --arg1 C D -- COMMAND

The exit status is the command's (a failure is never memoized), 2 for a usage error,
1 for any other refusal (a missing command or output); the reason goes to stderr.
"""

from __future__ import annotations

import argparse
import logging
import re
import sys
from collections.abc import Sequence

from persistable.steps._command import command_persistable, run_command, run_commands
from persistable.steps._errors import CommandError, CommandFailedError

__all__ = ["build_parser", "main"]

_DYNAMIC = re.compile(r"--arg(_output)?(\d+)")


def build_parser() -> argparse.ArgumentParser:
    """The options of ``persistable memo`` (the command follows ``--``)."""
    parser = argparse.ArgumentParser(
        prog="persistable memo",
        description=(
            "Run a command unless a memoized run of the same executable, dependency scripts, "
            "arguments and input files exists; declared outputs are stored and restored."
        ),
    )
    parser.add_argument(
        "-c",
        "--dependents",
        nargs="+",
        default=[],
        metavar="DEPENDENCY",
        help="scripts the command reads (their content enters the key)",
    )
    parser.add_argument(
        "-o",
        "--outputs",
        nargs="+",
        default=[],
        metavar="OUTPUT",
        help="files the command writes inside the working folder",
    )
    parser.add_argument(
        "-d",
        "--hash_output",
        "--data-dir",
        dest="data_dir",
        required=True,
        metavar="DIR",
        help="the store of memoized runs (a folder or URL)",
    )
    parser.add_argument("-n", "--name", help="payload name of the runs (default: the program name)")
    parser.add_argument(
        "-p", "--parallel", type=int, metavar="N", help="run the --argK argument sets on N threads"
    )
    parser.add_argument(
        "-q", "--quiet", action="store_true", help="do not stream the command's output"
    )
    parser.add_argument("--verbose", action="store_true", help="log what is memoized and why")
    return parser


def _split_dynamic(
    options: list[str],
) -> tuple[list[str], dict[int, list[str]], dict[int, list[str]]]:
    """Take memori's ``--argK ...`` / ``--arg_outputK ...`` groups out of ``options``."""
    rest: list[str] = []
    args: dict[int, list[str]] = {}
    outputs: dict[int, list[str]] = {}
    target: list[str] | None = None
    for token in options:
        match = _DYNAMIC.fullmatch(token)
        if match:
            group = outputs if match.group(1) else args
            target = group.setdefault(int(match.group(2)), [])
        elif token.startswith("-") and target is not None:
            target = None
            rest.append(token)
        elif target is not None:
            target.append(token)
        else:
            rest.append(token)
    return rest, args, outputs


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``persistable memo`` with ``argv`` (default ``sys.argv[1:]``); returns the exit status."""
    tokens = list(sys.argv[1:] if argv is None else argv)
    if "--" not in tokens:
        build_parser().print_usage(sys.stderr)
        print("persistable memo: give the command after '--'.", file=sys.stderr)
        return 2
    split = tokens.index("--")
    options, command = tokens[:split], tokens[split + 1 :]
    options, dynamic, dynamic_outputs = _split_dynamic(options)
    try:
        parsed = build_parser().parse_args(options)
    except SystemExit as exit_:
        return int(exit_.code or 0)
    if parsed.verbose:
        logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    if not command:
        print("persistable memo: no command after '--'.", file=sys.stderr)
        return 2
    try:
        if parsed.parallel is None:
            if dynamic:
                print("persistable memo: --argK needs -p/--parallel N.", file=sys.stderr)
                return 2
            run_command(
                command,
                data_dir=parsed.data_dir,
                dependencies=parsed.dependents,
                outputs=parsed.outputs,
                name=parsed.name,
                echo=not parsed.quiet,
            )
            return 0
        if not dynamic:
            print(
                "persistable memo: -p/--parallel needs --arg0 ... argument sets.", file=sys.stderr
            )
            return 2
        nodes = [
            command_persistable(
                [*command, *dynamic[index]],
                data_dir=parsed.data_dir,
                dependencies=parsed.dependents,
                outputs=dynamic_outputs.get(index, []),
                name=parsed.name,
                echo=not parsed.quiet,
            )
            for index in sorted(dynamic)
        ]
        status = 0
        for index, result in zip(
            sorted(dynamic), run_commands(nodes, max_workers=parsed.parallel), strict=True
        ):
            if isinstance(result, CommandError):
                print(f"persistable memo: --arg{index}: {result}", file=sys.stderr)
                status = 1
        return status
    except CommandFailedError as error:
        print(f"persistable memo: {error}", file=sys.stderr)
        return error.returncode if 0 < error.returncode < 256 else 1
    except CommandError as error:
        print(f"persistable memo: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
