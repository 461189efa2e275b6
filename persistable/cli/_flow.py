"""``persistable flow``: run h5flow-compatible HDF5 flows, serially or under ``mpiexec``.

h5flow's options: ``-c`` takes one or more configs (``-c a.yaml b.yaml`` as in h5flow,
or ``-c a.yaml -c b.yaml``), run in sequence; the output appears at ``-o`` only when
complete and is committed to ``--data-dir``. ``--drop`` removes exact object paths
from the final output only (each config's own ``flow.drop`` applies to that config's
output, so the later configs no longer see them). Exit codes: 0 done, 1 a stage failed
(rerun to continue), 2 bad input, 130 interrupted (rerun to continue).
"""

from __future__ import annotations

import sys

import click


@click.command("flow", context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "-c",
    "--configs",
    "configs",
    multiple=True,
    required=True,
    help="YAML config(s), run in sequence.",
)
@click.argument("more_configs", nargs=-1, type=click.Path())
@click.option(
    "-o",
    "--output",
    "--output_filename",
    "output",
    required=True,
    type=click.Path(),
    help="Output HDF5 file.",
)
@click.option(
    "-i",
    "--input",
    "--input_filename",
    "input_",
    default=None,
    type=click.Path(),
    help="Input HDF5 file.",
)
@click.option(
    "-s",
    "--start",
    "--start_position",
    "start",
    type=int,
    default=None,
    help="First row of the source.",
)
@click.option(
    "-e", "--end", "--end_position", "end", type=int, default=None, help="Row after the last one."
)
@click.option(
    "-d",
    "--drop",
    multiple=True,
    help="Exact path of an object to leave out of the final output (repeatable); "
    "every config can still read it.",
)
@click.option("--nompi", is_flag=True, help="Run without MPI (or set H5FLOW_NOMPI).")
@click.option(
    "-z",
    "--compression",
    type=click.Choice(["gzip", "lzf"]),
    default=None,
    help="Compression of new datasets.",
)
@click.option(
    "--data-dir",
    default=None,
    help="Store of output artifacts (default: .persistable-flow beside the output).",
)
@click.option(
    "--copy-output",
    is_flag=True,
    help="Give -o a writable copy of its own (default: a read-only hard link to the stored "
    "output, or a clone where the file system has them: nothing copied).",
)
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def command(
    configs: tuple[str, ...],
    more_configs: tuple[str, ...],
    output: str,
    input_: str | None,
    start: int | None,
    end: int | None,
    drop: tuple[str, ...],
    nompi: bool,
    compression: str | None,
    data_dir: str | None,
    copy_output: bool,
    no_progress: bool,
) -> None:
    """Run h5flow configs over an input file (resumable; the output is an artifact)."""
    from persistable.flow import FlowRequirementError, FlowStageError, run_flow
    from persistable.flow._mpi import get_comm

    try:
        result = run_flow(
            [*configs, *more_configs],
            output,
            input_,
            start,
            end,
            data_dir=data_dir,
            drop=drop,
            nompi=nompi,
            compression=compression,
            progress=not no_progress and sys.stderr.isatty(),
            copy_output=copy_output,
        )
    except (FlowStageError, FlowRequirementError) as error:
        click.echo(f"persistable: error: {error} Run the same command again to continue.", err=True)
        raise SystemExit(1) from error
    except KeyboardInterrupt:
        click.echo("persistable: interrupted; run the same command again to continue.", err=True)
        raise SystemExit(130) from None
    if get_comm(nompi).rank == 0:
        click.echo(result.summary())
