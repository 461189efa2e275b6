"""``run_flow``: configs in sequence over one input, resumable, committed as one artifact.

Steps (every rank runs them; rank 0 alone touches the store and the output path):

1. read and validate every config, find every class, check the input file;
2. key the output (configs, input content digest, start/end, drop, compression, each
   class's ``class_version`` and source fingerprint); if the store has a sound one
   (checksum verified), give it to ``-o`` (``_place``) and stop;
3. run each config's loop into per-rank replicas, or one file the ranks share with
   h5py's ``mpio`` driver (``use_mpio``), inside a private work folder
   ``.<output name>.flow-<key>/`` beside the output, journaling finished steps; rank 0's
   replica (or the shared file) starts as a copy of the config's input and becomes its
   output (the next config reads it), rewritten only when objects were dropped or deleted;
4. commit the last output to the store (a local store takes the file itself, by a
   rename), give it to ``-o`` (a clone, a read-only hard link or a copy), remove the
   work folder.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, cast

from persistable._content import file_digest
from persistable._keys import key_cache
from persistable.exceptions import ArtifactNotFoundError, CorruptArtifactError
from persistable.flow._artifact import FlowOutput, FlowParams
from persistable.flow._checksum import PendingRecord
from persistable.flow._config import DROP_FIX, FlowConfig, drop_name_problem, load_config
from persistable.flow._data_manager import H5FlowDataManager, ReplicasNeeded
from persistable.flow._errors import FlowError, FlowInputError
from persistable.flow._h5 import h5py, has_mpio
from persistable.flow._journal import Journal
from persistable.flow._loop import (
    LoopReport,
    ResolvedConfig,
    replica_path,
    resolve_classes,
    run_loop,
)
from persistable.flow._merge import finish_output
from persistable.flow._mpi import SerialComm, get_comm
from persistable.flow._place import place_output
from persistable.store import StoreLike

__all__ = ["FlowResult", "run_flow", "use_mpio"]

logger = logging.getLogger(__name__)


@dataclasses.dataclass
class FlowResult:
    """What :func:`run_flow` did."""

    output: Path
    key: str
    #: "generated", or "from store" when the artifact existed.
    status: str
    loops: list[LoopReport] = dataclasses.field(default_factory=list)
    ranks: int = 1
    #: How the output got the stored bytes: "clone", "link" (a read-only hard link to the
    #: stored file), "copy", or "file" (the file itself, when the store is remote).
    placed: str = ""

    @property
    def replayed_steps(self) -> int:
        return sum(loop.replayed for loop in self.loops)

    def summary(self) -> str:
        linked = (
            f" {self.output.name} is a read-only hard link to the stored file (pass "
            "--copy-output / copy_output=True for a writable copy)."
            if self.placed == "link"
            else ""
        )
        if self.status == "from store":
            return (
                f"{self.output}: already complete in the store (key {self.key}); nothing to do."
                + linked
            )
        steps = sum(loop.steps for loop in self.loops)
        resumed = (
            f", resumed: {self.replayed_steps} of {steps} steps were already done"
            if self.replayed_steps
            else ""
        )
        writes = {loop.writes for loop in self.loops} - {""}
        how = " (one shared file, mpio)" if writes == {"mpio"} else ""
        return (
            f"{self.output}: written on {self.ranks} rank(s){how}, {steps} steps{resumed} "
            f"(key {self.key})." + linked
        )


#: The methods of a flow class whose code (and the user code they reach) keys the output.
_LIFECYCLE = ("__init__", "init", "run", "next", "finish", "get")


def _fingerprint(cls: type) -> dict[str, str]:
    """Code fingerprints of the class's own lifecycle methods (persistable's bases left out).

    Each covers the method and the user functions, classes and constants it reaches
    (``persistable._fingerprint``), so changing a helper a stage calls changes the key.
    """
    from persistable._fingerprint import fingerprint

    digests: dict[str, str] = {}
    for name in _LIFECYCLE:
        for klass in cls.__mro__:
            if name in vars(klass):
                if klass.__module__.split(".")[0] != "persistable":
                    digests[f"{klass.__qualname__}.{name}"] = fingerprint(vars(klass)[name]).digest
                break
    return digests


def _class_records(resolved: ResolvedConfig) -> list[dict[str, Any]]:
    items = [resolved.generator, *resolved.stages, *resolved.resources]
    return [
        {
            "block": item.block.name,
            "kind": item.kind,
            "classname": item.block.classname,
            "class_version": str(getattr(item.cls, "class_version", "0.0.0")),
            "fingerprint": _fingerprint(item.cls),
        }
        for item in items
    ]


def _check_input(path: Path | None, config: FlowConfig, output: Path) -> None:
    loops_over = (
        config.source
        if config.generator is None
        else config.generator.dset_name
        if config.generator.classname == "H5FlowDatasetLoopGenerator"
        else None
    )
    if path is None:
        if loops_over is not None:
            raise FlowInputError(
                f"Config {str(config.file)!r} loops over the dataset {config.source!r} but no input "
                "file was given; pass -i <input.h5> (or use a generator block as flow.source)."
            )
        return
    if not path.is_file():
        raise FlowInputError(f"Input file {str(path)!r} does not exist; check the -i path.")
    if path.resolve() == output.resolve():
        raise FlowInputError(
            f"The output path {str(output)!r} is the input file; pass another -o (the input is never modified)."
        )
    h5 = h5py()
    if not h5.is_hdf5(str(path)):
        raise FlowInputError(
            f"Input file {str(path)!r} is not an HDF5 file; pass the .h5 file the flow should read."
        )
    if loops_over is not None:
        with h5.File(str(path), "r") as fh:
            dataset = f"{loops_over.strip('/')}/data"
            if dataset not in fh:
                raise FlowInputError(
                    f"Input file {str(path)!r} has no dataset {dataset!r} (flow.source of "
                    f"{str(config.file)!r}); fix flow.source or pass the right input file."
                )


def _abort_on_error(comm: SerialComm, error: BaseException) -> None:
    """Under MPI: report the error and stop every rank (no rank left in a collective).

    Ctrl-C too: ``mpiexec`` passes SIGINT to every rank, but a rank waiting in a
    collective call never sees it, so the interrupted rank stops the job (the finished
    steps are journaled: the same command continues).
    """
    if not comm.is_mpi:
        return
    if isinstance(error, KeyboardInterrupt):
        print(
            f"persistable flow: rank {comm.rank}: interrupted; run the same command again "
            "to continue.",
            file=sys.stderr,
        )
        _let_the_launcher_forward()
        comm.abort(130)
        return  # an MPI whose abort returns: the interruption goes on up
    print(f"persistable flow: rank {comm.rank}: {type(error).__name__}: {error}", file=sys.stderr)
    _let_the_launcher_forward()
    comm.abort(1)


#: Seconds a failing rank waits between reporting and aborting the job.
ABORT_GRACE_SECONDS = 0.5


def _let_the_launcher_forward() -> None:
    """Give ``mpiexec`` time to pass on what this rank wrote to stderr.

    The launcher forwards each rank's output asynchronously, and an abort ends every
    rank at once: on a busy machine the one line saying what failed was lost (the job
    ended with no error output at all).
    """
    sys.stderr.flush()
    time.sleep(ABORT_GRACE_SECONDS)


def run_flow(
    configs: Sequence[str | Path] | str | Path,
    output_filename: str | Path,
    input_filename: str | Path | None = None,
    start_position: int | None = None,
    end_position: int | None = None,
    *,
    data_dir: StoreLike | None = None,
    drop: Sequence[str] = (),
    nompi: bool = False,
    compression: str | None = None,
    progress: bool = False,
    copy_output: bool = False,
) -> FlowResult:
    """Run h5flow configs in sequence over ``input_filename``, writing ``output_filename``.

    Under ``mpiexec`` the chunks are shared round-robin between the ranks (pass
    ``nompi=True`` or set ``H5FLOW_NOMPI`` to run serially). An interrupted run continues
    from its journal when called again with the same arguments; a finished one is
    taken from the store (``data_dir``, default ``.persistable-flow`` beside the output).

    ``drop`` names objects (exact paths) left out of the final output, whichever config
    wrote them or whether the input had them; the configs still read them while they
    run. A config's own ``flow.drop`` applies to that config's output, as in h5flow, so
    the configs after it no longer see those objects.

    On a local store the finished file moves into the store (read-only, checksummed)
    and ``output_filename`` gets a clone of it where the file system can clone, else a
    read-only hard link (nothing is copied either way); ``copy_output=True`` gives it a
    writable copy of its own instead. A stored output is checked against its checksum
    before it is handed out again: one changed through a hard link is quarantined and
    generated again, never served changed.

    Raises
    ------
    FlowConfigError, FlowClassNotFoundError, FlowInputError
        Bad configs or files, before anything is written.
    FlowStageError, FlowRequirementError
        A stage failed (under MPI every rank is stopped instead, with the message on stderr).
    """
    comm = get_comm(nompi)
    try:
        return _run(
            comm,
            [configs] if isinstance(configs, (str, os.PathLike)) else list(configs),
            Path(output_filename),
            None if input_filename is None else Path(input_filename),
            start_position,
            end_position,
            data_dir,
            list(drop),
            compression,
            progress,
            copy_output,
        )
    except (Exception, KeyboardInterrupt) as error:
        _abort_on_error(comm, error)
        raise


def _run(
    comm: SerialComm,
    config_paths: list[str | Path],
    output: Path,
    input_path: Path | None,
    start: int | None,
    end: int | None,
    data_dir: StoreLike | None,
    drop: list[str],
    compression: str | None,
    progress: bool,
    copy_output: bool,
) -> FlowResult:
    if not config_paths:
        raise FlowError("run_flow needs at least one config file (-c reco.yaml).")
    for name in drop:
        problem = drop_name_problem(name)
        if problem is not None:
            raise FlowInputError(f"The drop name {name!r} (--drop / drop=) {problem}; {DROP_FIX}.")
    configs = [load_config(p) for p in config_paths]
    resolved = [resolve_classes(c) for c in configs]
    _check_input(input_path, configs[0], output)
    if output.is_dir():
        raise FlowInputError(
            f"The output path {str(output)!r} is a folder; pass a file name (-o out.h5)."
        )
    if not output.parent.is_dir():
        raise FlowInputError(
            f"The folder of the output {str(output)!r} does not exist; create it or fix -o."
        )
    digest = comm.bcast(file_digest(input_path) if comm.rank == 0 and input_path else None)
    params = FlowParams(
        configs=[c.tree for c in configs],
        input_digest=digest,
        start=start,
        end=end,
        drop=drop,
        compression=compression,
        classes=[_class_records(r) for r in resolved],
    )
    store = data_dir if data_dir is not None else output.parent / ".persistable-flow"
    artifact = FlowOutput(store, params)
    with key_cache():  # the key once for the look-up (no user code runs in here)
        key = artifact.persist_hash
        found = _stored_output(artifact, output, copy_output) if comm.rank == 0 else None
    result = FlowResult(output=output, key=key, status="generated", ranks=comm.size)
    work = output.parent / f".{output.name}.flow-{key[3:19]}"
    placed = comm.bcast(found)
    if placed:
        result.placed = placed
        if comm.rank == 0:
            shutil.rmtree(work, ignore_errors=True)  # left when a run stopped after its commit
            logger.info("%s", f"{output}: already complete in the store (key {key}); nothing to do")
        result.status = "from store"
        comm.barrier()
        return result

    lock = None
    if comm.rank == 0:
        work.mkdir(exist_ok=True)
        lock = _lock_work(work, output)
    comm.barrier()
    try:
        return _run_configs(
            comm,
            resolved,
            artifact,
            result,
            work,
            output,
            input_path,
            start,
            end,
            drop,
            compression,
            progress,
            copy_output,
        )
    finally:
        if lock is not None:
            lock.release()


def use_mpio(comm: SerialComm, compression: str | None) -> bool:
    """Whether the ranks write one shared file with h5py's ``mpio`` driver.

    Only under MPI with an h5py built with parallel HDF5 (not the pip wheel), not with
    ``compression`` (parallel HDF5 writes filtered datasets only collectively), and not
    when the environment variable ``PERSISTABLE_FLOW_NOMPIO`` is set to a non-empty
    value (for a file system where one rank does not see another's writes at once).
    """
    if not comm.is_mpi or compression is not None or os.environ.get("PERSISTABLE_FLOW_NOMPIO"):
        return False
    return has_mpio()


def _run_config(
    comm: SerialComm,
    item: ResolvedConfig,
    work: Path,
    index: int,
    current_input: Path | None,
    compression: str | None,
    drops: list[str],
    start: int | None,
    end: int | None,
    progress: bool,
    shared: bool,
) -> tuple[Path, LoopReport, list[str]]:
    """One config's loop into this rank's replica, or the ranks' shared file: (file, report, deleted)."""
    replica = replica_path(work, index, 0 if shared else comm.rank)
    with H5FlowDataManager(
        replica, current_input, comm, compression, drops, copy_input=comm.rank == 0, mpio=shared
    ) as dm:
        report = run_loop(
            item,
            dm,
            Journal(work / f"journal-{index}", comm.size),
            None if current_input is None else str(current_input),
            start,
            end,
            progress,
        )
        report.writes = "mpio" if shared else "replicas" if comm.is_mpi else "serial"
        return replica, report, sorted(dm.deleted)


def _stored_output(artifact: FlowOutput, output: Path, copy_output: bool) -> str | None:
    """Give ``-o`` the stored output when the store has a sound one (rank 0): how, or None.

    Its checksum is verified first (``-o`` may be a hard link to it, changed since): a
    damaged one is quarantined, with a warning, and the flow runs again.
    """
    if not artifact.exists():
        return None
    try:
        artifact.load(verify=True)
    except ArtifactNotFoundError:  # deleted or quarantined by another process meanwhile
        return None
    except CorruptArtifactError as error:
        artifact.set_aside(error)
        return None
    placed = place_output(artifact.payload, output, copy=copy_output)
    artifact.reset_payload()
    return placed


def _lock_work(work: Path, output: Path) -> Any:
    """Hold the work folder for this run (a second run of the same flow fails at once)."""
    import filelock

    lock = filelock.FileLock(str(work / "run.lock"), timeout=0)
    try:
        lock.acquire()
    except filelock.Timeout as error:
        raise FlowInputError(
            f"Another run of this flow (same configs and input) is writing {str(output)!r} "
            f"(it holds {str(work / 'run.lock')!r}); wait for it to finish, it commits the same output."
        ) from error
    return lock


def _run_configs(
    comm: SerialComm,
    resolved: list[ResolvedConfig],
    artifact: FlowOutput,
    result: FlowResult,
    work: Path,
    output: Path,
    input_path: Path | None,
    start: int | None,
    end: int | None,
    drop: list[str],
    compression: str | None,
    progress: bool,
    copy_output: bool,
) -> FlowResult:
    current_input = input_path
    for index, item in enumerate(resolved):
        merged = work / f"output-{index}.h5"
        drops = list(item.config.drop) + (drop if index == len(resolved) - 1 else [])
        if index > 0:
            _check_input(current_input, item.config, output)
        if comm.bcast(merged.exists() if comm.rank == 0 else None):
            result.loops.append(LoopReport())
            current_input = merged
            continue
        shared = use_mpio(comm, compression)
        while True:
            try:
                replica, report, deleted = _run_config(
                    comm,
                    item,
                    work,
                    index,
                    current_input,
                    compression,
                    drops,
                    start,
                    end,
                    progress,
                    shared,
                )
                break
            except ReplicasNeeded as why:
                if not shared:  # pragma: no cover - raised on shared files only
                    raise
                if comm.rank == 0:
                    logger.info("%s", f"mpio cannot write this flow ({why}); writing replicas")
                    replica_path(work, index, 0).unlink(missing_ok=True)
                comm.barrier()
                shared = False  # again with replicas, resuming from the journal
        comm.barrier()
        if comm.rank == 0:
            last = index == len(resolved) - 1
            if last and not drops and not deleted:  # the replica is the output as it is
                artifact.pending_record = PendingRecord(replica)
            finish_output(replica, merged, drops, deleted)
            if last and artifact.pending_record is None:  # rewritten without the dropped
                artifact.pending_record = PendingRecord(merged)
            # Its output is whole: a rerun skips this config, so its journal is done with.
            shutil.rmtree(work / f"journal-{index}", ignore_errors=True)
        comm.barrier()
        replica.unlink(missing_ok=True)
        result.loops.append(report)
        current_input = merged

    placed = ""
    if comm.rank == 0:
        final = Path(cast(Path, current_input))
        with key_cache():  # one key for the commit and the load after it (no user code)
            artifact.generate(produced=final)  # a local store takes the file itself (a rename)
            artifact.reset_payload()
            if final.exists():  # streamed to a remote store: the work folder is beside -o
                os.replace(final, output)
                placed = "file"
            else:  # the store holds it now (read-only): -o gets a clone, a hard link or a copy
                artifact.load()
                placed = place_output(artifact.payload, output, copy=copy_output)
                artifact.reset_payload()
        shutil.rmtree(work, ignore_errors=True)
    result.placed = comm.bcast(placed)
    comm.barrier()
    return result
