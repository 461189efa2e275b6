"""``map``: run a pipeline over many samples on the runner's executors, results in input order.

Each sample is one task: the worker runs the whole pipeline on it (cached steps commit
straight to the store) and sends back the processed sample, or the failure with its
id and traceback. A failure never stops the other samples. Samples travel to worker
processes and Dask workers cloudpickled, so classes defined in ``__main__`` work.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import pickle
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, cast

from persistable import _lineage_feed
from persistable.exceptions import InvalidSampleError, MapError, ProcessingError
from persistable.samples._run import run_pipeline
from persistable.samples._sample import check_sample, sample_fields
from persistable.store import Store, StoreLike, make_store

if TYPE_CHECKING:
    from persistable.samples._run import Step

__all__ = ["map_steps"]

logger = logging.getLogger(__name__)

#: The process that imported this module: a worker forked from a forkserver that
#: preloaded it (see :func:`_preload_in_forkserver`) shows its server's pid here.
IMPORTED_BY_PID = os.getpid()

#: A task's outcome: (True, sample) or (False, ProcessingError).
Outcome = tuple[bool, Any]


def _run_one(steps: list[Step], sample: Any, store: Store | None) -> Outcome:
    try:
        return True, run_pipeline(steps, sample, store)
    except ProcessingError as error:
        return False, error
    except Exception as error:  # the store, a lock, a serializer: still this sample's failure
        import traceback

        sample_id = getattr(sample, "id", None)
        return False, ProcessingError(
            f"The pipeline failed on sample {sample_id!r} outside a processor "
            f"({type(error).__name__}: {error})",
            sample_id=sample_id,
            processor="",
            original=error,
            traceback=traceback.format_exc(),
        )


def _dumps(value: Any) -> bytes:
    import cloudpickle

    data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def _run_task(task: bytes) -> bytes:
    """Worker entry point: unpickle (steps, sample, store), run, pickle the outcome back."""
    try:
        steps, sample, store = pickle.loads(task)  # noqa: S301 - pickled by this map's own caller
    except Exception as error:
        import traceback

        outcome: Outcome = (
            False,
            ProcessingError(
                f"A worker could not unpickle a sample ({type(error).__name__}: {error}); "
                "install the same packages and code on every worker.",
                traceback=traceback.format_exc(),
            ),
        )
        return _dumps((outcome, []))
    _adopt_main_classes(sample)
    with _lineage_feed.capture() as captured:
        outcome = _run_one(steps, sample, store)
    # What the pipeline committed goes back too: the caller adds it to the lineage index.
    try:
        return _dumps((outcome, captured))
    except Exception:
        _lineage_feed.add(captured)  # a store that does not pickle: buffered here
    try:
        return _dumps((outcome, []))
    except Exception as error:
        if outcome[0]:
            failure = ProcessingError(
                f"The processed sample {sample.id!r} cannot be pickled back "
                f"({type(error).__name__}: {error}); keep its fields picklable.",
                sample_id=sample.id,
            )
        else:  # the original exception does not pickle: keep its text
            failure = outcome[1]
            failure = ProcessingError(
                str(failure),
                sample_id=failure.sample_id,
                processor=failure.processor,
                traceback=failure.traceback,
            )
        return _dumps(((False, failure), []))


def _received(data: bytes) -> Outcome:
    """The outcome a worker's :func:`_run_task` sent; what it committed goes to the index buffer."""
    outcome, captured = pickle.loads(data)  # noqa: S301 - from this map's own workers
    _lineage_feed.add(captured)
    return cast(Outcome, outcome)


def _adopt_main_classes(sample: Any) -> None:
    """Make the caller's ``__main__`` classes importable in this worker's ``__main__``.

    cloudpickle brings classes of the caller's script by value; the sample artifacts are
    written with plain pickle, which names a class by module and qualname. Registering
    the class in this worker's ``__main__`` lets pickle write ``__main__.Cell`` here, and
    the caller's script, where ``__main__.Cell`` is the user's own class, loads it back.
    """
    import sys

    main = sys.modules.get("__main__")
    if main is None:
        return
    classes = {type(sample)}
    for name in sample_fields(sample):
        classes.add(type(getattr(sample, name, None)))
    for cls in classes:
        if cls.__module__ == "__main__" and "." not in cls.__qualname__:
            current = getattr(main, cls.__qualname__, None)
            if current is not cls and (current is None or isinstance(current, type)):
                setattr(main, cls.__qualname__, cls)


def _preload_in_forkserver() -> None:
    """Have the forkserver, if it is not running yet, import persistable's sample machinery once.

    See :mod:`persistable._forkserver`; the user's own modules are not preloaded.
    """
    from persistable._forkserver import preload_in_forkserver

    preload_in_forkserver([__name__])


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
    from persistable.run._executors import DaskBackend, FuturesBackend, make_backend

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
                outcomes[index] = _run_one(steps, sample, where)
                bar.update(1)
        else:
            if executor == "processes":
                _preload_in_forkserver()
            backend = make_backend(executor, max_workers)
            try:
                if isinstance(backend, DaskBackend):
                    futures = {
                        backend.client.submit(
                            _run_task, _dumps((steps, sample, where)), pure=False
                        ): index
                        for index, sample in enumerate(items)
                    }
                    distributed = backend._distributed
                    for future in distributed.as_completed(list(futures)):
                        outcomes[futures[future]] = _received(future.result())
                        bar.update(1)
                else:
                    assert isinstance(backend, FuturesBackend)
                    pool = backend.executor
                    pending: dict[concurrent.futures.Future[Any], int] = {}
                    for index, sample in enumerate(items):
                        if backend.crosses_processes:
                            task = _dumps((steps, sample, where))
                            pending[pool.submit(_run_task, task)] = index
                        else:
                            pending[pool.submit(_run_one, steps, sample, where)] = index
                    for future in concurrent.futures.as_completed(pending):
                        result = future.result()
                        if isinstance(result, bytes):
                            result = _received(result)
                        outcomes[pending[future]] = result
                        bar.update(1)
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
