"""The ``flow`` command line (``python -m persistable.flow``), h5flow's options."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

__all__ = ["add_arguments", "main", "run_from_args"]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """h5flow's options (plus ``--data-dir``, the store of output artifacts)."""
    parser.add_argument(
        "-c", "--configs", nargs="+", required=True, help="YAML config file(s), run in sequence"
    )
    parser.add_argument(
        "-o", "--output_filename", "--output", required=True, help="output HDF5 file"
    )
    parser.add_argument("-i", "--input_filename", "--input", default=None, help="input HDF5 file")
    parser.add_argument(
        "-s", "--start_position", "--start", type=int, default=None, help="first row of the source"
    )
    parser.add_argument(
        "-e", "--end_position", "--end", type=int, default=None, help="row after the last one"
    )
    parser.add_argument(
        "-d", "--drop", nargs="+", default=[], help="objects to leave out of the output"
    )
    parser.add_argument(
        "--nompi", action="store_true", help="run without MPI (or set H5FLOW_NOMPI)"
    )
    parser.add_argument(
        "-z",
        "--compression",
        choices=["gzip", "lzf"],
        default=None,
        help="compression of new datasets",
    )
    parser.add_argument(
        "--data-dir",
        default=None,
        help="store of output artifacts (default: .persistable-flow beside the output)",
    )
    parser.add_argument(
        "-v", "--verbose", action="count", default=0, help="more logging (-vv for debug)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_from_args(args: argparse.Namespace) -> int:
    """Run a flow from parsed arguments; print one summary line on rank 0."""
    from persistable.flow._errors import FlowError
    from persistable.flow._run import run_flow

    level = {0: logging.WARNING, 1: logging.INFO}.get(args.verbose, logging.DEBUG)
    logging.basicConfig(level=level, format="%(levelname)s %(name)s: %(message)s")
    try:
        result = run_flow(
            args.configs,
            args.output_filename,
            args.input_filename,
            args.start_position,
            args.end_position,
            data_dir=args.data_dir,
            drop=args.drop,
            nompi=args.nompi,
            compression=args.compression,
            progress=not args.no_progress and sys.stderr.isatty(),
        )
    except FlowError as error:
        print(f"persistable flow: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(
            "persistable flow: interrupted; run the same command again to continue "
            "from the last finished chunk.",
            file=sys.stderr,
        )
        return 130
    from persistable.flow._mpi import get_comm

    if get_comm(args.nompi).rank == 0:
        print(result.summary())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="persistable flow", description="Run h5flow-compatible HDF5 flows."
    )
    add_arguments(parser)
    return run_from_args(parser.parse_args(argv))
