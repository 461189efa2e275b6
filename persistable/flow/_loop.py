"""The chunk loop of one config: build the objects, init, loop (resuming), finish.

Every rank runs this in step. Step ``n`` of the loop hands chunk ``n*size + rank`` to
each rank; the stages' collective writes gather the ranks' parts in rank order, so the
datasets grow in chunk order whatever the number of ranks.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from persistable.flow._classes import (
    H5FlowGenerator,
    H5FlowResource,
    H5FlowStage,
    requirement_dicts,
    resources,
)
from persistable.flow._config import BlockConfig, FlowConfig, Requirement
from persistable.flow._data_manager import H5FlowDataManager
from persistable.flow._discovery import find_class, search_dirs
from persistable.flow._errors import (
    FlowConfigError,
    FlowError,
    FlowRequirementError,
    FlowStageError,
)
from persistable.flow._journal import Journal
from persistable.flow._modules import H5FlowDatasetLoopGenerator, H5FlowTestStage
from persistable.flow._refs import dereference_chain
from persistable.flow._state import StateWatch

__all__ = ["LoopReport", "resolve_classes", "run_loop"]

logger = logging.getLogger(__name__)

BUILTIN_CLASSES: dict[str, type] = {
    "H5FlowDatasetLoopGenerator": H5FlowDatasetLoopGenerator,
    "H5FlowTestStage": H5FlowTestStage,
}

T = TypeVar("T")


@dataclass
class LoopReport:
    """What one config's loop did."""

    steps: int = 0
    replayed: int = 0
    chunks: int = 0
    #: How the output was written: "mpio" (one file shared by the ranks), "replicas"
    #: (one file per rank), "serial"; "" when the loop was done before (a resume).
    writes: str = ""


@dataclass(frozen=True)
class ResolvedBlock:
    """A config block with its class."""

    block: BlockConfig
    cls: type
    kind: str


@dataclass
class ResolvedConfig:
    config: FlowConfig
    generator: ResolvedBlock
    stages: list[ResolvedBlock] = field(default_factory=list)
    resources: list[ResolvedBlock] = field(default_factory=list)


def _generator_block(config: FlowConfig) -> BlockConfig:
    if config.generator is not None:
        return config.generator
    return BlockConfig(
        name=config.source,
        classname="H5FlowDatasetLoopGenerator",
        path=None,
        dset_name=config.source,
        params={},
        requires=(),
    )


def resolve_classes(config: FlowConfig) -> ResolvedConfig:
    """Find every class of ``config`` and check it is a stage/generator/resource as placed."""
    dirs = search_dirs(config.file)

    def resolve(block: BlockConfig, base: type, kind: str, key: str) -> ResolvedBlock:
        cls = find_class(block.classname, block.path, dirs, BUILTIN_CLASSES)
        if not issubclass(cls, base):
            raise FlowConfigError(
                f"Config {str(config.file)!r}, key {key!r}: class {block.classname!r} is not an "
                f"{base.__name__}; derive it from persistable.flow.{base.__name__} or fix classname."
            )
        return ResolvedBlock(block, cls, kind)

    generator = _generator_block(config)
    return ResolvedConfig(
        config=config,
        generator=resolve(generator, H5FlowGenerator, "generator", f"{generator.name}.classname"),
        stages=[resolve(s, H5FlowStage, "stage", f"{s.name}.classname") for s in config.stages],
        resources=[
            resolve(r, H5FlowResource, "resource", f"resources[{i}].classname")
            for i, r in enumerate(config.resources)
        ],
    )


@contextmanager
def _context(what: str, rank: int, chunk: Any = None) -> Iterator[None]:
    try:
        yield
    except FlowError:
        raise
    except Exception as error:
        where = "" if chunk is None else f" at chunk {chunk}"
        raise FlowStageError(
            f"{what} raised {type(error).__name__}: {error} (rank {rank}{where})."
        ) from error


def _call(what: str, rank: int, chunk: Any, fn: Callable[..., T], *args: Any) -> T:
    with _context(what, rank, chunk):
        return fn(*args)


def _load_requirement(
    dm: H5FlowDataManager, stage: str, req: Requirement, source: str, source_slice: slice
) -> Any:
    path = list(req.path)
    sel = source_slice if source_slice != H5FlowGenerator.EMPTY else slice(0, 0)
    try:
        if dm.ref_exists(source, path[0]):
            chain = list(zip([source, *path[:-1]], path, strict=False))
        elif len(path) > 1:
            chain = list(itertools.pairwise(path))
        else:
            if req.index_only:
                return np.arange(sel.start or 0, sel.stop, dtype=np.int64)
            return dm.get_dset(path[0])[sel]
        refs, directions = zip(*(dm.get_ref(p, c) for p, c in chain), strict=False)
        regions = [dm.get_ref_region(p, c) for p, c in chain]
        return dereference_chain(
            sel,
            list(refs),
            data=None if req.index_only else dm.get_dset(path[-1]),
            regions=regions,
            ref_directions=list(directions),
            indices_only=req.index_only,
        )
    except Exception as error:
        chain_text = " -> ".join([source, *path])
        raise FlowRequirementError(
            f"Stage {stage!r} requires {req.name!r} ({chain_text}"
            f"{', indices' if req.index_only else ''}) but it could not be loaded "
            f"({type(error).__name__}: {error}); check the names in its requires list."
        ) from error


def run_loop(
    resolved: ResolvedConfig,
    dm: H5FlowDataManager,
    journal: Journal | None,
    input_filename: str | None,
    start: int | None,
    end: int | None,
    progress: bool = False,
) -> LoopReport:
    """Run one config over ``dm`` (all ranks together); finished journal steps are replayed."""
    comm = dm.comm
    rank = comm.rank
    resources.clear()
    gen_block = resolved.generator.block
    for item in resolved.resources:
        b = item.block
        resources[b.classname] = _call(
            f"resource {b.classname}",
            rank,
            None,
            lambda b=b, cls=item.cls: cls(
                classname=b.classname,
                data_manager=dm,
                input_filename=input_filename,
                start_position=start,
                end_position=end,
                **b.params,
            ),
        )
    generator: H5FlowGenerator = _call(
        f"generator {gen_block.name} ({gen_block.classname})",
        rank,
        None,
        lambda: resolved.generator.cls(
            classname=gen_block.classname,
            dset_name=gen_block.dset_name,
            data_manager=dm,
            input_filename=input_filename,
            start_position=start,
            end_position=end,
            **gen_block.params,
        ),
    )
    stages: list[H5FlowStage] = []
    for item in resolved.stages:
        b = item.block
        stages.append(
            _call(
                f"stage {b.name} ({b.classname})",
                rank,
                None,
                lambda b=b, cls=item.cls: cls(
                    name=b.name,
                    classname=b.classname,
                    data_manager=dm,
                    requires=requirement_dicts(b.requires),
                    **b.params,
                ),
            )
        )
    source = generator.dset_name
    for name, resource in resources.items():
        _call(f"resource {name}.init", rank, None, resource.init, source)
    _call(f"generator {gen_block.name}.init", rank, None, generator.init)
    for stage in stages:
        _call(f"stage {stage.name}.init", rank, None, stage.init, source)
    dm.take_effects()  # init runs again on resume: its writes are not journaled

    opened = (
        (journal.open(), journal.stateful()) if journal is not None and rank == 0 else (0, None)
    )
    done, stateful = comm.bcast(opened)
    blockers = [
        o.classname
        for o in (generator, *stages, *resources.values())
        if not getattr(o, "resumable", True)
    ]
    if done and (blockers or stateful):
        why = f"{', '.join(blockers)} set resumable = False" if blockers else stateful
        logger.warning(
            "Not resuming: %s (state kept across chunks is not journaled); running every chunk again",
            why,
        )
        done = 0
        if journal is not None and rank == 0:
            journal.clear()
    watched = [(f"stage {s.name} ({s.classname})", s) for s in stages]
    watched += [(f"resource {name}", r) for name, r in resources.items()]
    watch: StateWatch | None = StateWatch(watched) if not blockers else None
    report = LoopReport(replayed=0)
    requirements = [
        [r for item in resolved.stages[: i + 1] for r in item.block.requires]
        for i in range(len(stages))
    ]
    bar = _progress_bar(generator, progress and rank == 0)
    step = 0
    while True:
        chunk_id = step * comm.size + rank
        with _context(f"generator {gen_block.name}.next", rank, chunk_id):
            try:
                chunk = next(generator)
            except StopIteration:
                break
        dm.take_effects()  # the generator's writes are made again on resume
        if step < done and journal is not None:
            slices, effects = journal.load(step)
            if slices[rank] != chunk:
                reason = (
                    f"generator {gen_block.name} ({gen_block.classname}) gave rows "
                    f"{chunk.start}:{chunk.stop} at step {step} on rank {rank}, the interrupted "
                    f"run gave {slices[rank].start}:{slices[rank].stop}"
                )
                journal.mark_stateful(reason)
                raise FlowStageError(
                    f"Cannot resume: {reason}; its next() is not deterministic, so the finished "
                    "chunks cannot be replayed. Run the same command again: it starts over."
                )
            dm.apply(effects)
            report.replayed += 1
        else:
            writer = journal if rank == 0 else None  # rank 0 journals the steps
            if writer is not None:
                writer.begin(step)
            try:
                dm.journal_to(None if writer is None else writer.add)
                try:
                    _run_stages(dm, stages, requirements, source, chunk, chunk_id)
                finally:
                    dm.journal_to(None)
                # a step is finished when every rank finished it (the allgather waits for all)
                gathered = comm.allgather((None if watch is None else watch.changed(), chunk))
                change = next((c for c, _ in gathered if c is not None), None)
                if writer is not None:
                    if change is not None:
                        writer.mark_stateful(f"{change} between chunks")
                    writer.commit([s for _, s in gathered])
            except BaseException:
                if writer is not None:
                    writer.abandon()  # no file for a step that did not finish
                raise
            if change is not None:
                watch = None  # recorded once; no need to digest again
        if chunk != H5FlowGenerator.EMPTY:
            report.chunks += 1
        step += 1
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    report.steps = step
    _call(f"generator {gen_block.name}.finish", rank, None, generator.finish)
    for stage in stages:
        _call(f"stage {stage.name}.finish", rank, None, stage.finish, source)
    for name, resource in resources.items():
        _call(f"resource {name}.finish", rank, None, resource.finish, source)
    dm.take_effects()
    dm.finish()
    return report


def _run_stages(
    dm: H5FlowDataManager,
    stages: list[H5FlowStage],
    requirements: list[list[Requirement]],
    source: str,
    chunk: Any,
    chunk_id: int,
) -> None:
    """Run every stage on one chunk, loading the source rows and each stage's requirements."""
    rank = dm.comm.rank
    cache: dict[str, Any] = {}
    for stage, reqs in zip(stages, requirements, strict=False):
        what = f"stage {stage.name} ({stage.classname})"
        names = {r.name for r in reqs}
        for key in list(cache):
            if key not in names and key != source:
                del cache[key]
        if source not in cache:
            with _context(f"{what} loading {source!r}", rank, chunk_id):
                sel = chunk if chunk != H5FlowGenerator.EMPTY else slice(0, 0)
                cache[source] = dm.get_dset(source)[sel]
        for req in reqs:
            if req.name not in cache:
                cache[req.name] = _load_requirement(dm, stage.name, req, source, chunk)
        _call(
            f"{what}.run",
            rank,
            f"{chunk_id} (rows {chunk.start}:{chunk.stop})",
            stage.run,
            source,
            chunk,
            cache,
        )


def _progress_bar(generator: H5FlowGenerator, enabled: bool) -> Any:
    if not enabled:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    total = len(generator) if hasattr(generator, "__len__") else None
    return tqdm(total=total, unit="step", smoothing=1, ascii=True)


def replica_path(work_dir: Path, index: int, rank: int) -> Path:
    return work_dir / f"replica-{index}-rank{rank}.h5"
