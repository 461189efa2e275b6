"""What travels between ``map``'s caller and its worker processes: batches of samples out, outcomes back.

A task is one batch: the pipeline and store pickled once, each sample pickled alone
(samples of one batch share no object, and one that a worker cannot unpickle fails
alone, named by its id). The worker runs the whole pipeline on each sample (cached steps
commit straight to the store) and sends back, for each, the processed sample or the
failure with its id and traceback, and the seconds it took, with what the pipeline
committed (for the caller's lineage index). Everything travels cloudpickled, so classes
defined in ``__main__`` work.
"""

from __future__ import annotations

import pickle
import time
from typing import TYPE_CHECKING, Any, cast

from persistable import _lineage_feed
from persistable.exceptions import ProcessingError
from persistable.samples._run import run_pipeline
from persistable.samples._sample import sample_fields

if TYPE_CHECKING:
    from persistable.samples._run import Step
    from persistable.store import Store

__all__ = ["Outcome", "Result", "dumps", "pack_batch", "received", "run_batch", "run_one"]

#: A sample's outcome: (True, sample) or (False, ProcessingError).
Outcome = tuple[bool, Any]
#: What a worker sends back per sample: the outcome and the seconds it took.
Result = tuple[bool, Any, float]


def run_one(steps: list[Step], sample: Any, store: Store | None, private: bool = False) -> Outcome:
    try:
        return True, run_pipeline(steps, sample, store, private=private)
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


def dumps(value: Any) -> bytes:
    import cloudpickle

    data: bytes = cloudpickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
    return data


def _unpickling_failed(error: Exception, sample_id: object) -> Outcome:
    import traceback

    what = "the pipeline" if sample_id is None else f"sample {sample_id!r}"
    return (
        False,
        ProcessingError(
            f"A worker could not unpickle {what} ({type(error).__name__}: {error}); "
            "install the same packages and code on every worker.",
            sample_id=sample_id,
            traceback=traceback.format_exc(),
        ),
    )


def run_batch(task: bytes) -> bytes:
    """Worker entry point: run the pipeline on each sample of a batch, pickle the outcomes back.

    ``task`` is :func:`pack_batch`'s: the pipeline and store pickled once, each sample
    pickled alone (so samples of one batch share no object, and one that cannot be
    unpickled here fails alone). What comes back is a list of ``(ok, value, seconds)``
    and what the pipeline committed (see :func:`received`).
    """
    context, items = pickle.loads(task)  # noqa: S301 - plain bytes and ids, from this map's caller
    try:
        steps, store = pickle.loads(context)  # noqa: S301 - pickled by this map's own caller
    except Exception as error:
        outcomes = [(*_unpickling_failed(error, sample_id), 0.0) for sample_id, _ in items]
        return dumps((outcomes, []))
    results: list[Result] = []
    with _lineage_feed.capture() as captured:
        for sample_id, blob in items:
            started = time.perf_counter()
            try:
                sample = pickle.loads(blob)  # noqa: S301 - pickled by this map's own caller
            except Exception as error:
                results.append((*_unpickling_failed(error, sample_id), 0.0))
                continue
            _adopt_main_classes(sample)
            # Unpickled from its own bytes: no one else holds this sample, no copy needed.
            ok, value = run_one(steps, sample, store, private=True)
            results.append((ok, value, time.perf_counter() - started))
    # What the pipeline committed goes back too: the caller adds it to the lineage index.
    try:
        return dumps((results, captured))
    except Exception:
        pass
    try:
        dumps(captured)
    except Exception:
        _lineage_feed.add(captured)  # a store that does not pickle: buffered here
        captured = []
    return dumps(([_sendable(result) for result in results], captured))


def _sendable(result: Result) -> Result:
    """``result`` if it pickles, else a failure that does (named by the sample's id)."""
    try:
        dumps(result)
    except Exception as error:
        ok, value, seconds = result
        if ok:
            failure = ProcessingError(
                f"The processed sample {value.id!r} cannot be pickled back "
                f"({type(error).__name__}: {error}); keep its fields picklable.",
                sample_id=value.id,
            )
        else:  # the original exception does not pickle: keep its text
            failure = ProcessingError(
                str(value),
                sample_id=value.sample_id,
                processor=value.processor,
                traceback=value.traceback,
            )
        return False, failure, seconds
    return result


def pack_batch(context: bytes, items: list[tuple[str | int, bytes]]) -> bytes:
    """The task of one batch: the pickled pipeline and store, and each sample's id and bytes."""
    return pickle.dumps((context, items), protocol=pickle.HIGHEST_PROTOCOL)


def received(data: bytes) -> list[Result]:
    """The outcomes a worker's :func:`run_batch` sent; what it committed goes to the index buffer."""
    outcomes, captured = pickle.loads(data)  # noqa: S301 - from this map's own workers
    _lineage_feed.add(captured)
    return cast("list[Result]", outcomes)


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
