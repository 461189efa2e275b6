"""``Compose``: processors, ``Cache`` and ``Save`` steps run in order on one sample or many."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import PurePath
from typing import TYPE_CHECKING, Any

from persistable.samples._map import map_steps
from persistable.samples._processor import Processor
from persistable.samples._run import Cache, Save, run_pipeline
from persistable.store import Store, StoreLike, make_store

if TYPE_CHECKING:
    from persistable.samples._run import Step

__all__ = ["Compose", "map_samples"]


def _flatten(steps: Iterable[Any]) -> list[Step]:
    flat: list[Step] = []
    for step in steps:
        if isinstance(step, Compose):
            flat.extend(step.steps)
        elif isinstance(step, (Processor, Cache, Save)):
            flat.append(step)
        else:
            raise TypeError(
                f"Compose() takes Processor, Cache, Save or Compose steps (got {step!r:.80} "
                f"that is a {type(step).__name__})."
            )
    return flat


class Compose:
    """Processors run in order on each sample; call it on one sample or :meth:`map` it over many.

    ``Compose(a, b, c)`` and ``Compose([a, b, c])`` are the same pipeline.
    """

    def __init__(self, *steps: Step | Sequence[Step] | Compose) -> None:
        if len(steps) == 1 and isinstance(steps[0], (list, tuple)):
            self.steps = _flatten(steps[0])
        else:
            self.steps = _flatten(steps)
        self._stores: dict[tuple[str | bytes, str], Store] = {}
        self._last: tuple[object, Store] | None = None

    def __repr__(self) -> str:
        return f"Compose({self.steps!r})"

    def __call__(self, sample: Any, store: StoreLike | None = None) -> Any:
        """The processed copy of ``sample`` (which is left unchanged).

        Raises
        ------
        ProcessingError
            A processor failed; it names the sample, the processor and the original error.
        """
        return run_pipeline(self.steps, sample, self._store(store))

    def _store(self, where: StoreLike | None) -> Store | None:
        """The store for ``where``, built once per folder or URL string (a store holds no state of a run)."""
        if where is None or isinstance(where, Store):
            return where
        last = self._last
        if last is not None and last[0] is where:
            return last[1]  # the same absolute folder or URL object as the call before
        import os

        # A relative folder is relative to the working directory of each call.
        spelled = os.fspath(where)
        absolute = os.path.isabs(spelled) or "://" in str(spelled)
        name = (spelled, "" if absolute else os.getcwd())
        found = self._stores.get(name)
        if found is None:
            found = self._stores[name] = make_store(where)
        if absolute and isinstance(
            where, (str, bytes, PurePath)
        ):  # immutable: its identity will do
            self._last = (where, found)
        return found

    def map(
        self,
        samples: Iterable[Any],
        store: StoreLike | None = None,
        *,
        executor: Any = "serial",
        max_workers: int | None = None,
        progress: bool | None = None,
        on_error: str = "raise",
        storage_options: dict[str, Any] | None = None,
    ) -> list[Any]:
        """The processed samples in input order; see :func:`persistable.samples.map`."""
        return map_steps(
            self.steps,
            samples,
            store=store,
            executor=executor,
            max_workers=max_workers,
            progress=progress,
            on_error=on_error,
            storage_options=storage_options,
        )


def map_samples(
    pipeline: Compose | Step,
    samples: Iterable[Any],
    *,
    store: StoreLike | None = None,
    executor: Any = "serial",
    max_workers: int | None = None,
    progress: bool | None = None,
    on_error: str = "raise",
    storage_options: dict[str, Any] | None = None,
) -> list[Any]:
    """Run ``pipeline`` over ``samples``; the processed samples come back in input order.

    Parameters
    ----------
    pipeline
        A :class:`Compose` (or one processor, ``Cache`` or ``Save``).
    samples
        Samples with distinct ids; they are not changed.
    store
        Where ``Cache`` and ``Save`` steps without their own folder write.
    executor
        ``"serial"``, ``"threads"``, ``"processes"``, ``"dask"`` (a new ``LocalCluster``),
        a ``distributed.Client``, a scheduler address or a ``concurrent.futures.Executor``,
        as for ``persistable.run``.
    progress
        Show a tqdm progress bar (``None``: for 50 samples or more, when tqdm is installed).
    on_error
        ``"raise"``: once every sample has run, raise :class:`MapError` if any failed;
        ``"return"``: put each failure's :class:`ProcessingError` in its sample's place.

    Raises
    ------
    InvalidSampleError
        A sample has no id, or two share one (checked before anything runs).
    MapError
        Some samples failed (``on_error="raise"``); the others completed and were cached.
    """
    pipeline = pipeline if isinstance(pipeline, Compose) else Compose([pipeline])
    return map_steps(
        pipeline.steps,
        samples,
        store=store,
        executor=executor,
        max_workers=max_workers,
        progress=progress,
        on_error=on_error,
        storage_options=storage_options,
    )
