"""``map``: run a pipeline over many samples on the runner's executors, results in input order.

Serially and on threads each sample is one call. On processes and Dask, samples go out
in batches (see :mod:`._ship`): one per task until some have finished, then as many as
take about the backend's ``batch_seconds`` by the mean time per sample so far, and at
most a share of the samples left per slot, so that the tail still spreads over every
worker (the runner's rule for short nodes). A task's round trip costs the caller a few
hundred microseconds of CPU (pickles, the pool's threads and pipes; several ms on Dask),
which a pool of busy workers otherwise pays per sample. At most ``capacity`` tasks are
out at a time: samples are pickled as their turn comes, not all up front. A failure
never stops the other samples.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
from collections import deque
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from persistable import _lineage_feed
from persistable.exceptions import InvalidSampleError, MapError, ProcessingError
from persistable.samples._sample import check_sample
from persistable.samples._ship import Outcome, pack_batch, received, run_batch, run_one
from persistable.store import Store, StoreLike, make_store

if TYPE_CHECKING:
    from persistable.run._executors import Backend
    from persistable.samples._run import Step

__all__ = ["map_steps"]

logger = logging.getLogger(__name__)

#: The process that imported this module: a worker forked from a forkserver that
#: preloaded it (see :func:`_preload_in_forkserver`) shows its server's pid here.
IMPORTED_BY_PID = os.getpid()
#: The most samples one task carries.
MAX_BATCH = 256


def _preload_in_forkserver() -> None:
    """Have the forkserver, if it is not running yet, import persistable's sample machinery once.

    See :mod:`persistable._forkserver`; the user's own modules are not preloaded.
    """
    from persistable._forkserver import preload_in_forkserver

    preload_in_forkserver([__name__, "persistable.samples._ship"])


def _check_ids(samples: list[Any]) -> None:
    seen: dict[str | int, int] = {}
    for position, sample in enumerate(samples):
        sample_id = check_sample(sample, f"Sample #{position}")
        first = seen.setdefault(sample_id, position)
        if first != position:
            raise InvalidSampleError(
                f"Samples #{first} and #{position} share the id {sample_id!r}; the ids of one "
                "map() must be distinct (they name results, failures and cached artifacts)."
            )


class _NullBar:
    def update(self, count: int) -> None:
        pass

    def close(self) -> None:
        pass


def _progress_bar(progress: bool | None, total: int) -> Any:
    if progress is False or (progress is None and total < 50):
        return _NullBar()
    try:
        from tqdm.auto import tqdm
    except ImportError:
        if progress:
            logger.warning("progress=True needs tqdm (pip install 'persistable[progress]')")
        return _NullBar()
    return tqdm(total=total, desc="samples", unit="sample")


def _not_sent(error: Exception, sample_id: str | int) -> Outcome:
    import traceback

    return (
        False,
        ProcessingError(
            f"Sample {sample_id!r} cannot be pickled to a worker ({type(error).__name__}: "
            f"{error}); keep its fields picklable, or map it serially.",
            sample_id=sample_id,
            original=error,
            traceback=traceback.format_exc(),
        ),
    )


class _Batches:
    """The submit-as-ready loop of a map on processes or Dask (see the module's docstring)."""

    def __init__(
        self,
        backend: Backend,
        context: bytes,
        items: list[Any],
        outcomes: list[Outcome | None],
        bar: Any,
    ) -> None:
        from persistable.samples._ship import dumps

        self._dumps = dumps
        self.backend = backend
        self.context = context
        self.items = items
        self.outcomes = outcomes
        self.bar = bar
        self.waiting: deque[int] = deque(range(len(items)))
        self.finished = 0
        self.busy_s = 0.0
        self.submit, self.wait_any = _slots(backend)

    def run(self) -> None:
        inflight: dict[Any, list[int]] = {}
        while self.waiting or inflight:
            while self.waiting and len(inflight) < self.backend.capacity:
                batch, task = self._take()
                if task is not None:
                    inflight[self.submit(task)] = batch
            if inflight:
                for future, data in self.wait_any(inflight):
                    batch = inflight.pop(future)
                    for index, (ok, value, seconds) in zip(batch, received(data), strict=True):
                        self.outcomes[index] = (ok, value)
                        self.finished += 1
                        self.busy_s += seconds
                    self.bar.update(len(batch))

    def _size(self) -> int:
        if self.finished == 0:
            return 1
        mean = max(self.busy_s / self.finished, 1e-5)
        by_time = int(self.backend.batch_seconds / mean)
        spread = -(-len(self.waiting) // self.backend.capacity)  # leave work for every slot
        return max(1, min(by_time, spread, MAX_BATCH))

    def _take(self) -> tuple[list[int], bytes | None]:
        """The next batch's sample positions and its task (None: every sample of it failed to pickle)."""
        size = self._size()
        batch: list[int] = []
        blobs: list[tuple[str | int, bytes]] = []
        while len(batch) < size and self.waiting:
            index = self.waiting.popleft()
            sample = self.items[index]
            try:
                blob = self._dumps(sample)
            except Exception as error:
                self.outcomes[index] = _not_sent(error, sample.id)
                self.bar.update(1)
                continue
            batch.append(index)
            blobs.append((sample.id, blob))
        return batch, (pack_batch(self.context, blobs) if batch else None)


def _slots(
    backend: Backend,
) -> tuple[Callable[[bytes], Any], Callable[[dict[Any, Any]], list[tuple[Any, bytes]]]]:
    """How to start :func:`run_batch` on a task, and to wait for some tasks out and their results."""
    from persistable.run._executors import DaskBackend, FuturesBackend, next_completions

    if isinstance(backend, DaskBackend):
        client = backend.client
        # Results travel back in the client's event loop as tasks finish (no round trip
        # per result here).
        completions = backend._distributed.as_completed(with_results=True)

        def submit_dask(task: bytes) -> Any:
            future = client.submit(run_batch, task, pure=False)
            completions.add(future)
            return future

        def wait_dask(inflight: dict[Any, Any]) -> list[tuple[Any, bytes]]:
            # A task's error is raised by result().
            return [
                (future, data if future.status == "finished" else future.result())
                for future, data in next_completions(completions)
            ]

        return submit_dask, wait_dask
    assert isinstance(backend, FuturesBackend)
    pool = backend.executor

    def submit_pool(task: bytes) -> Any:
        return pool.submit(run_batch, task)

    def wait_pool(inflight: dict[Any, Any]) -> list[tuple[Any, bytes]]:
        done, _ = concurrent.futures.wait(
            list(inflight), return_when=concurrent.futures.FIRST_COMPLETED
        )
        return [(future, future.result()) for future in done]

    return submit_pool, wait_pool


def map_steps(
    steps: list[Step],
    samples: Iterable[Any],
    *,
    store: StoreLike | None = None,
    executor: Any = "serial",
    max_workers: int | None = None,
    progress: bool | None = None,
    on_error: str = "raise",
    storage_options: dict[str, Any] | None = None,
) -> list[Any]:
    """Run ``steps`` over ``samples``: :func:`persistable.samples.map` once it has the steps."""
    from persistable.run._executors import FuturesBackend, make_backend

    if on_error not in ("raise", "return"):
        raise ValueError(f"on_error must be 'raise' or 'return' (got {on_error!r}).")
    items = list(samples)
    _check_ids(items)
    where = None if store is None else make_store(store, storage_options=storage_options)
    outcomes: list[Outcome | None] = [None] * len(items)
    bar = _progress_bar(progress, len(items))
    try:
        if executor == "serial":
            for index, sample in enumerate(items):
                outcomes[index] = run_one(steps, sample, where)
                bar.update(1)
        else:
            if executor == "processes":
                _preload_in_forkserver()
            backend = make_backend(executor, max_workers)
            try:
                if not isinstance(backend, FuturesBackend) or backend.crosses_processes:
                    from persistable.samples._ship import dumps

                    context = dumps((steps, where))
                    _Batches(backend, context, items, outcomes, bar).run()
                else:
                    _in_threads(backend, steps, items, where, outcomes, bar)
            finally:
                backend.close()
    finally:
        bar.close()
        _lineage_feed.flush()  # what the map committed, into the stores' lineage index
    results: list[Any] = []
    failures: list[ProcessingError] = []
    for outcome in outcomes:
        assert outcome is not None
        ok, value = outcome
        if not ok:
            failures.append(value)
            logger.warning("Sample %r failed: %s", value.sample_id, value)
        results.append(value)
    if failures and on_error == "raise":
        shown = "; ".join(str(failure) for failure in failures[:3])
        more = f" and {len(failures) - 3} more" if len(failures) > 3 else ""
        raise MapError(
            f"{len(failures)} of {len(items)} samples failed: {shown}{more}. The other samples "
            "completed (cached steps are stored); fix the cause and map again to resume, or "
            "pass on_error='return' to get the failures in place.",
            failures,
            [None if isinstance(value, ProcessingError) else value for value in results],
        )
    return results


def _in_threads(
    backend: Backend,
    steps: list[Step],
    items: list[Any],
    where: Store | None,
    outcomes: list[Outcome | None],
    bar: Any,
) -> None:
    """One call per sample on a pool of this process (threads, or a user's in-process executor)."""
    from persistable.run._executors import FuturesBackend

    assert isinstance(backend, FuturesBackend)  # the caller sends Dask to _Batches
    pending = {
        backend.executor.submit(run_one, steps, sample, where): index
        for index, sample in enumerate(items)
    }
    for future in concurrent.futures.as_completed(pending):
        outcomes[pending[future]] = future.result()
        bar.update(1)
