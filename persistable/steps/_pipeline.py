"""memori's ``Pipeline``: stages wired by argument name, run in dependency order.

Unlike memori, the definition is sorted topologically (a cycle is a clear error, the
list order only breaks ties), a stage named as the target of several entries gets the
outputs of all their sources, and independent memoized stages of one level run in
parallel through :func:`persistable.run` when an executor is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from persistable.steps._errors import PipelineError
from persistable.steps._stage import Stage, StagePersistable, changed_outputs

__all__ = ["Pipeline", "redefine_result_key"]

START = "start"


def _as_sources(entry: Any, index: int) -> tuple[Stage, ...] | None:
    if isinstance(entry, str) and entry == START:
        return None
    members = entry if isinstance(entry, tuple) else (entry,)
    for member in members:
        if not isinstance(member, Stage):
            raise PipelineError(
                f"entry {index} of the pipeline definition has the source {member!r:.80}; "
                "a source is 'start', a Stage or a tuple of Stages."
            )
    return tuple(members)


class Pipeline:
    """Stages connected by a definition such as ``[("start", s0), (s0, s1), ((s1, s2), s3)]``.

    Parameters
    ----------
    definition
        ``(source, stage)`` pairs: the source is ``"start"`` (the stage takes the
        arguments of :meth:`run`), a Stage, or a tuple of Stages whose results are merged
        (the right-most wins on equal names); the stage's static args win over both.
    executor
        ``None`` runs the stages one after the other. ``"threads"``, ``"processes"``,
        ``"dask"`` or an executor object runs the memoized stages of each level of the
        graph in parallel through :func:`persistable.run`.
    max_workers
        Passed to :func:`persistable.run`.
    """

    def __init__(
        self,
        definition: Sequence[tuple[Any, Stage]],
        *,
        executor: Any = None,
        max_workers: int | None = None,
    ) -> None:
        self.definition = list(definition)
        self.executor = executor
        self.max_workers = max_workers
        self._sources: dict[int, list[Stage]] = {}
        self._starts: set[int] = set()
        self._stages: dict[int, Stage] = {}
        order: list[int] = []  # first appearance, to break ties
        entries: list[Any] = self.definition
        for index, entry in enumerate(entries):
            if not isinstance(entry, tuple) or len(entry) != 2:
                raise PipelineError(
                    f"entry {index} of the pipeline definition is {entry!r:.80}; each entry is a "
                    "pair (source, stage)."
                )
            source, target = entry
            if not isinstance(target, Stage):
                raise PipelineError(
                    f"entry {index} of the pipeline definition has the target {target!r:.80}; "
                    "a target is a Stage."
                )
            sources = _as_sources(source, index)
            for stage in (*(sources or ()), target):
                if id(stage) not in self._stages:
                    self._stages[id(stage)] = stage
                    order.append(id(stage))
            if sources is None:
                self._starts.add(id(target))
            else:
                self._sources.setdefault(id(target), []).extend(sources)
        self.levels: list[list[Stage]] = self._sort(order)
        self.pipeline_results: dict[str, Any] = {}

    def _sort(self, order: list[int]) -> list[list[Stage]]:
        """Kahn's algorithm by levels; a stage runs after all of its sources."""
        waiting = {node: {id(s) for s in self._sources.get(node, [])} for node in order}
        levels: list[list[Stage]] = []
        done: set[int] = set()
        while len(done) < len(order):
            ready = [node for node in order if node not in done and waiting[node] <= done]
            if not ready:
                stuck = [self._stages[node].stage_name for node in order if node not in done]
                raise PipelineError(
                    f"the pipeline definition has a cycle among the stages {stuck}; a stage "
                    "cannot take input from a stage that depends on it."
                )
            levels.append([self._stages[node] for node in ready])
            done.update(ready)
        return levels

    @property
    def stages(self) -> list[Stage]:
        """Every stage, in the order they run."""
        return [stage for level in self.levels for stage in level]

    def _arguments(self, stage: Stage) -> dict[str, Any]:
        combined: dict[str, Any] = {}
        for source in self._sources.get(id(stage), []):
            combined.update(source.results)
        combined.update(stage.args)
        return {name: combined[name] for name in stage.inputs if name in combined}

    def run(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run every stage in dependency order; the ``start`` stages get these arguments.

        Returns the results of all stages merged (later stages win on equal names).
        """
        self.pipeline_results = {}
        for level in self.levels:
            calls: list[tuple[Stage, tuple[Any, ...], dict[str, Any]]] = []
            for stage in level:
                if id(stage) in self._starts:
                    # Each start stage takes the keywords it names (all of them with **kwargs).
                    call_args = args
                    call_kwargs = {
                        name: value
                        for name, value in kwargs.items()
                        if name in stage.inputs or stage.accepts_any_keyword
                    }
                    for name, value in self._arguments(stage).items():
                        call_kwargs.setdefault(name, value)
                else:
                    call_args, call_kwargs = (), self._arguments(stage)
                calls.append((stage, call_args, call_kwargs))
            if self.executor is not None:
                self._run_parallel(calls)
            for stage, call_args, call_kwargs in calls:
                stage.run(*call_args, **call_kwargs)  # loads what _run_parallel committed
                self.pipeline_results.update(stage.stage_results)
        return self.pipeline_results

    def _run_parallel(self, calls: list[tuple[Stage, tuple[Any, ...], dict[str, Any]]]) -> None:
        """Commit the memoized runs of one level in parallel (outputs re-validated first)."""
        from persistable.run import run

        nodes: list[StagePersistable] = []
        for stage, call_args, call_kwargs in calls:
            if stage.hash_output is None:
                continue
            node = stage.persistable(stage.bind_arguments(call_args, call_kwargs))
            if node.exists():
                node.load()
                if changed_outputs(node.payload):
                    continue  # stage.run() re-runs it in this process, logging why
            nodes.append(node)
        if len(nodes) > 1:
            report = run(nodes, executor=self.executor, max_workers=self.max_workers)
            if not report.ok:
                from persistable.exceptions import RunError

                raise RunError(f"a stage of the pipeline failed:\n{report}", report)

    @property
    def results(self) -> dict[str, Any]:
        """The results of the last run, with paths of existing files made absolute."""
        return _abspaths(self.pipeline_results)


def _abspaths(values: dict[str, Any]) -> dict[str, Any]:
    converted: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, str) and os.path.isfile(value):
            converted[key] = os.path.abspath(value)
        elif isinstance(value, dict):
            converted[key] = _abspaths(value)
        else:
            converted[key] = value
    return converted


def redefine_result_key(dictionary: dict[str, Any], from_key: str, to_key: str) -> dict[str, Any]:
    """A copy of ``dictionary`` with ``from_key`` renamed to ``to_key``."""
    renamed = dict(dictionary)
    renamed[to_key] = renamed.pop(from_key)
    return renamed
