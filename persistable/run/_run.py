"""``persistable.run``: resolve targets into a DAG and generate what is missing, in parallel.

The main loop submits a node as soon as all of its upstream nodes are committed
(submit-as-ready), collects completions one batch at a time, marks the downstream
of a failed node as skipped while independent work goes on, and on Ctrl-C stops
scheduling, cancels what has not started, waits for what is running and raises
:class:`~persistable.exceptions.RunInterrupted` carrying the partial report.
"""

from __future__ import annotations

import contextlib
import logging
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from persistable import _lineage_feed
from persistable._keys import resolved_keys
from persistable._persistable import Persistable
from persistable.exceptions import RunError, RunInterrupted, StoreConfigurationError
from persistable.run._executors import (
    Backend,
    NodeOutcome,
    check_executor,
    dumps_node,
    failed_outcome,
    make_backend,
)
from persistable.run._graph import Graph, Node, iter_persistables, resolve
from persistable.run._report import NodeResult, RunReport, Status
from persistable.run._shipment import pack
from persistable.store import MemoryStore

__all__ = ["run"]

logger = logging.getLogger(__name__)

#: Runs with more nodes to generate than this show a progress bar when ``progress=None``.
PROGRESS_THRESHOLD = 4
#: The most nodes one task carries (short nodes are batched, see ``_Scheduler``).
MAX_BATCH = 256


def run(
    targets: Iterable[Persistable[Any, Any]] | Persistable[Any, Any],
    *,
    executor: object = "serial",
    max_workers: int | None = None,
    progress: bool | None = None,
    raise_on_failure: bool = False,
) -> RunReport:
    """Generate every missing artifact that ``targets`` need, each exactly once.

    Parameters
    ----------
    targets
        Persistables (or one) whose artifacts must exist after the run. Their tracked
        dependencies are walked; nodes with equal ``(payload_name, key)`` are merged,
        committed ones are not run again.
    executor
        ``"serial"`` (default), ``"threads"``, ``"processes"`` (a ``forkserver`` process
        pool: nodes travel cloudpickled, their store must be reachable from other
        processes, and scripts need the ``if __name__ == "__main__":`` guard), ``"dask"`` (starts a ``distributed.LocalCluster`` for this run),
        a ``distributed.Client`` or a scheduler address string (an existing cluster),
        or any ``concurrent.futures.Executor`` (left running).
    max_workers
        Workers of the pool or local cluster started here (default: CPU count).
    progress
        Show a ``tqdm.auto`` progress bar; ``None`` shows one when tqdm is installed
        and more than a few nodes must be generated.
    raise_on_failure
        Raise :class:`~persistable.exceptions.RunError` (with ``.report``) when a node
        failed, instead of only reporting it.

    Returns
    -------
    RunReport
        Every node's status (generated, loaded, skipped, failed) and timings.

    Raises
    ------
    DependencyError
        The tracked dependencies form a cycle.
    RunInterrupted
        Ctrl-C stopped the run (a ``KeyboardInterrupt``; ``.report`` holds what finished).
    RunError
        ``raise_on_failure`` was set and a node failed.
    """
    started = time.perf_counter()
    check_executor(executor, max_workers)
    target_list = [targets] if isinstance(targets, Persistable) else list(targets)
    graph = resolve(target_list)
    to_run = graph.to_run
    results: dict[int, NodeResult] = {
        id(node): NodeResult(
            node.payload_name, node.key, "loaded", reason="already committed in the store"
        )
        for node in graph.existing
    }
    logger.info(
        "persistable.run: %d nodes, %d committed already, %d to generate",
        len(graph.nodes),
        len(graph.existing),
        len(to_run),
    )
    description = executor if isinstance(executor, str) else type(executor).__name__
    interrupted = False
    if to_run:
        backend = make_backend(executor, max_workers)
        description = backend.description
        try:
            if backend.crosses_processes:
                _check_picklable_stores(graph)
            # In this process, nodes reuse the resolved keys instead of hashing their
            # upstream again (while no params field is assigned): linear in depth.
            with (
                contextlib.nullcontext()
                if backend.crosses_processes
                else resolved_keys(graph.keys, graph.epoch)
            ):
                interrupted = _Scheduler(
                    graph, backend, results, _progress_bar(progress, len(to_run))
                ).run()
        finally:
            backend.close()
            _lineage_feed.flush()  # what this run committed, into the stores' lineage index
    report = RunReport(
        results=[results[id(node)] for node in graph.nodes],
        executor=str(description),
        wall_s=time.perf_counter() - started,
        interrupted=interrupted,
    )
    if interrupted:
        logger.warning("persistable.run was interrupted:\n%s", report)
        raise RunInterrupted(
            f"persistable.run was interrupted after {len(report.generated)} generated nodes; "
            "rerun the same call to resume.",
            report,
        )
    failed = report.failed
    if failed:
        logger.warning("persistable.run: %d nodes failed:\n%s", len(failed), report)
        if raise_on_failure:
            raise RunError(
                f"{len(failed)} of {len(report)} nodes failed, first {failed[0].label}: "
                f"{failed[0].error}; see .report, fix the cause and rerun to resume.",
                report,
            )
    return report


def _check_picklable_stores(graph: Graph) -> None:
    for persistable in iter_persistables(node.persistable for node in graph.to_run):
        if isinstance(persistable.store, MemoryStore):
            raise StoreConfigurationError(
                f"{persistable.payload_name} uses the in-process store {persistable.store.url!r}, "
                "which worker processes cannot see; use executor='threads' or a local folder / "
                "s3:// data_dir with process or cluster executors."
            )


class _NullBar:
    def update(self, n: int = 1) -> None:
        pass

    def set_postfix_str(self, text: str) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(progress: bool | None, total: int) -> Any:
    if progress is False or (progress is None and total <= PROGRESS_THRESHOLD):
        return _NullBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            logger.warning("progress=True needs tqdm (pip install 'persistable[progress]')")
        return _NullBar()
    return tqdm(total=total, desc="persistable.run", unit="node", leave=True)


class _Scheduler:
    """Submit-as-ready loop over one resolved graph.

    Ready nodes go out one per task until some have finished; from then on, when the
    backend batches (``batch_seconds``), ready nodes go out together, as many as take
    about ``batch_seconds`` by the mean duration so far, and at most a share of the
    queue per slot, so that the tail of a run still spreads over every worker.
    """

    def __init__(
        self, graph: Graph, backend: Backend, results: dict[int, NodeResult], bar: Any
    ) -> None:
        self.graph = graph
        self.backend = backend
        self.results = results
        self.bar = bar
        self.waiting = {id(node): len(node.upstream) for node in graph.to_run}
        self.ready: deque[Node] = deque(node for node in graph.to_run if not node.upstream)
        self.inflight: dict[Any, list[Node]] = {}
        self.memo: dict[int, Any] = {}
        self.failures = 0
        self.finished = 0
        self.busy_s = 0.0
        #: Nodes to send alone: their batch could not be pickled or unpickled as a whole.
        self.alone: set[int] = set()

    def run(self) -> bool:
        """Run until every node has a result; returns whether Ctrl-C interrupted it."""
        try:
            while self.ready or self.inflight:
                while self.ready and len(self.inflight) < self.backend.capacity:
                    self._submit(self._take_batch())
                if self.inflight:
                    for future in self.backend.wait_any(self.inflight):
                        self._finish(future)
        except KeyboardInterrupt:
            self._interrupt()
            return True
        finally:
            self.bar.close()
        return False

    def _batch_size(self) -> int:
        if self.backend.batch_seconds <= 0 or self.finished == 0:
            return 1
        mean = max(self.busy_s / self.finished, 1e-5)
        by_time = int(self.backend.batch_seconds / mean)
        spread = -(-len(self.ready) // self.backend.capacity)  # leave work for every slot
        return max(1, min(by_time, spread, MAX_BATCH))

    def _take_batch(self) -> list[Node]:
        first = self.ready.popleft()
        batch = [first]
        if id(first) in self.alone:
            return batch
        size = self._batch_size()
        while len(batch) < size and self.ready and id(self.ready[0]) not in self.alone:
            batch.append(self.ready.popleft())
        return batch

    def _submit(self, batch: list[Node]) -> None:
        identities = [(node.payload_name, node.key) for node in batch]
        task: list[Persistable[Any, Any]] | bytes = [node.persistable for node in batch]
        if self.backend.crosses_processes:
            try:
                shipment = pack([node.persistable for node in batch], self.graph.keys, self.memo)
                task = dumps_node(shipment)
            except Exception as error:
                if len(batch) > 1:
                    self._send_alone(batch)
                    return
                self._fail_batch(batch, error)
                return
        logger.debug("Submitting %s", ", ".join(node.label for node in batch))
        try:
            future = self.backend.submit(task, identities)
        except Exception as error:  # e.g. a broken process pool: these nodes fail, not the run
            self._fail_batch(batch, error)
            return
        self.inflight[future] = batch

    def _send_alone(self, batch: list[Node]) -> None:
        """Put the nodes of a batch back at the front of the queue, to go one per task."""
        self.alone.update(id(node) for node in batch)
        self.ready.extendleft(reversed(batch))

    def _fail_batch(self, batch: list[Node], error: BaseException) -> None:
        for node in batch:
            self._record(node, failed_outcome(node.payload_name, node.key, error))
            self.bar.update(1)

    def _finish(self, future: Any) -> None:
        batch = self.inflight.pop(future)
        try:
            outcomes = self.backend.result(future)
        except BaseException as error:  # the executor failed (or a worker got Ctrl-C)
            self._fail_batch(batch, error)
            return
        if outcomes is None:  # the worker could not unpickle the batch as a whole
            self._send_alone(batch)
            return
        for node, outcome in zip(batch, outcomes, strict=True):
            self.finished += 1
            self.busy_s += outcome.duration_s
            self._record(node, outcome)
            self.bar.update(1)

    def _record(self, node: Node, outcome: NodeOutcome) -> None:
        if outcome.status == "failed":
            self.results[id(node)] = NodeResult(
                node.payload_name,
                node.key,
                "failed",
                duration_s=outcome.duration_s,
                reason="generating it raised",
                error=outcome.error,
                traceback=outcome.traceback,
                worker=outcome.worker,
            )
            logger.warning("%s failed: %s", node.label, outcome.error)
            self.failures += 1
            self.bar.set_postfix_str(f"{self.failures} failed")
            self._skip_downstream(node, f"upstream {node.label} failed")
            return
        if outcome.lineages:
            store = node.persistable.store
            _lineage_feed.add((store, *entry) for entry in outcome.lineages)
        status: Status = "generated" if outcome.status == "generated" else "loaded"
        reason = (
            "no artifact in the store" if status == "generated" else "committed by another worker"
        )
        self.results[id(node)] = NodeResult(
            node.payload_name,
            node.key,
            status,
            duration_s=outcome.duration_s,
            reason=reason,
            worker=outcome.worker,
        )
        logger.debug(
            "%s %s in %.3f s on %s", node.label, status, outcome.duration_s, outcome.worker
        )
        for downstream in node.downstream:
            self.waiting[id(downstream)] -= 1
            if self.waiting[id(downstream)] == 0 and id(downstream) not in self.results:
                self.ready.append(downstream)

    def _skip_downstream(self, node: Node, reason: str) -> None:
        stack = list(node.downstream)
        while stack:
            downstream = stack.pop()
            if id(downstream) in self.results:
                continue
            self.results[id(downstream)] = NodeResult(
                downstream.payload_name, downstream.key, "skipped", reason=reason
            )
            self.bar.update(1)
            stack.extend(downstream.downstream)

    def _interrupt(self) -> None:
        logger.warning(
            "Interrupted: cancelling queued nodes, waiting for %d running tasks", len(self.inflight)
        )
        for future in self.backend.cancel(list(self.inflight)):
            self.inflight.pop(future)
        try:
            self.backend.wait_all(list(self.inflight))
            for future in list(self.inflight):
                self._finish(future)
        except KeyboardInterrupt:
            logger.warning("Interrupted again: not waiting for running nodes")
        for node in self.graph.to_run:
            if id(node) not in self.results:
                self.results[id(node)] = NodeResult(
                    node.payload_name, node.key, "skipped", reason="the run was interrupted"
                )
