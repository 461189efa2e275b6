"""Running a chain of steps on one sample: ``Cache`` and ``Save``, the plan of keys, resuming.

Every step has a key, built by lineage: the first from the sample's identity (class,
id and the content of its fields, see :func:`sample_key`), each next one from the key
before it, the processor's class name, params and code fingerprint. A processor that
changes upstream changes the keys of every step after it. ``Cache(p)`` stores the
sample after ``p`` as an artifact under its step's key and loads it on the next run;
``Save()`` always writes the sample as it is. Before running anything, the pipeline
looks for the last cached step already in its store and resumes from there.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from persistable import _keys
from persistable._hashing import KEY_SCHEME, key_from_tree
from persistable._persistable import Persistable, _camel_to_snake
from persistable.exceptions import ArtifactNotFoundError, InvalidSampleError
from persistable.io import FileIO
from persistable.params import PersistableParams
from persistable.samples._apply import apply_processor, step_key
from persistable.samples._hit import FULL_PATH, MISS, load_local_hit
from persistable.samples._pickling import SamplePickleFileIO
from persistable.samples._processor import Processor, code_fingerprint, processor_params
from persistable.samples._sample import check_sample, copy_sample, sample_key
from persistable.store import Store, StoreLike, make_store

if TYPE_CHECKING:
    from typing import TypeAlias

    Step: TypeAlias = "Processor | Cache | Save"

__all__ = ["Cache", "SampleArtifact", "SampleStepParams", "Save", "plan", "run_pipeline"]

logger = logging.getLogger(__name__)


@dataclass
class SampleStepParams(PersistableParams):
    """What a stored sample was made from: the step, its params and code, and the key it came in with."""

    step: str
    params: dict[str, Any]
    code: str
    sample_id: str | int
    upstream: str


class SampleArtifact(Persistable[Any, SampleStepParams]):
    """One sample stored after one step (``Cache`` or ``Save``); the payload is the sample itself.

    The processor's code is in the params (so in the key): this class's own code, which
    only calls the processor, has nothing to warn about on load. Every load checks the
    payload's checksum (``verify=True``), as the fast path of a hit does.
    """

    code_changes = "ignore"
    #: Pickle, with a dataclass's or pydantic model's sets in a fixed order (BaseSample's
    #: own pickling does that for it), so a rerun in another process writes the same bytes.
    default_payload_io = SamplePickleFileIO()

    def key_tree(self) -> dict[str, Any]:
        """What the key is hashed from: :func:`artifact_tree` of the step's key (no dependencies, no version)."""
        params = self.params
        return artifact_tree(
            self.payload_name,
            params.sample_id,
            step_key(params.step, params.params, params.code, params.upstream),
        )

    def load(
        self,
        warn_if_validation_fails: bool = False,
        *,
        verify: bool = True,
        **untracked_payload_params: Any,
    ) -> None:
        """``Persistable.load``, checking the payload's checksum by default."""
        super().load(warn_if_validation_fails, verify=verify, **untracked_payload_params)

    def _generate_payload(self, **untracked_payload_params: Any) -> Any:
        return untracked_payload_params["compute"]()

    def _post_load(self, **untracked_payload_params: Any) -> None:
        pass

    def _post_generate(self, **untracked_payload_params: Any) -> None:
        pass


def artifact_tree(payload_name: str, sample_id: str | int, key_out: str) -> dict[str, Any]:
    """The key tree of a stored sample: its payload name, id and the key of the step that made it.

    ``key_out`` (:func:`step_key`) already covers the step's name, params and code and
    everything upstream, so the artifact's key is hashed from these few strings.
    """
    return {
        "key_scheme": KEY_SCHEME,
        "payload_name": payload_name,
        "sample_id": sample_id,
        "step": key_out,
    }


def _make_store(where: StoreLike | None, storage_options: dict[str, Any] | None) -> Store | None:
    return None if where is None else make_store(where, storage_options=storage_options)


class Cache:
    """Store the sample after ``processor`` and load it, instead of processing, on the next run.

    Parameters
    ----------
    processor
        The processor whose result is cached.
    cache_dir
        Where (a folder, an fsspec URL or a Store); default: the ``store`` given to the
        pipeline call or to ``map``.
    payload_name
        The artifacts' folder in the store; default: the processor's class name in snake_case.
    payload_io
        How the sample is written (default pickle, which keeps its class and every field).
    """

    def __init__(
        self,
        processor: Processor,
        cache_dir: StoreLike | None = None,
        *,
        payload_name: str | None = None,
        payload_io: FileIO[Any] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        if not isinstance(processor, Processor):
            raise TypeError(
                f"Cache() takes a Processor (got {processor!r:.80} that is a "
                f"{type(processor).__name__})."
            )
        self.processor = processor
        self.store = _make_store(cache_dir, storage_options)
        self.payload_name = payload_name or _camel_to_snake(type(processor).__name__)
        self.payload_io = payload_io

    def __repr__(self) -> str:
        return f"Cache({self.processor!r})"


class Save:
    """Write the sample as it is at this point of the pipeline (always; never loads).

    Parameters
    ----------
    save_to_dir
        Where (a folder, an fsspec URL or a Store); default: the pipeline's ``store``.
    payload_name
        The artifacts' folder in the store (default ``"saved_samples"``).
    payload_io
        How the sample is written (default pickle).
    """

    def __init__(
        self,
        save_to_dir: StoreLike | None = None,
        *,
        payload_name: str = "saved_samples",
        payload_io: FileIO[Any] | None = None,
        storage_options: dict[str, Any] | None = None,
    ) -> None:
        self.store = _make_store(save_to_dir, storage_options)
        self.payload_name = payload_name
        self.payload_io = payload_io

    def __repr__(self) -> str:
        return f"Save(payload_name={self.payload_name!r})"


@dataclass
class _Planned:
    """One step of one sample's run: what to do, its params tree and the keys in and out."""

    step: Step
    name: str
    params: dict[str, Any]
    code: str
    key_in: str
    key_out: str


def plan(steps: Sequence[Step], sample: Any) -> list[_Planned]:
    """The keys of every step for ``sample``, computed before anything runs."""
    key = sample_key(sample)
    planned: list[_Planned] = []
    for step in steps:
        if isinstance(step, Save):
            planned.append(_Planned(step, "Save", {}, "", key, key))
            continue
        processor = step.processor if isinstance(step, Cache) else step
        name = type(processor).__name__
        params = processor_params(processor)
        code = code_fingerprint(type(processor))
        key_out = step_key(name, params, code, key)
        planned.append(_Planned(step, name, params, code, key, key_out))
        key = key_out
    return planned


def _where(step: Cache | Save, store: Store | None) -> Store:
    where = step.store if step.store is not None else store
    if where is None:
        raise InvalidSampleError(
            f"{step!r} has nowhere to write: pass cache_dir= (Cache) or save_to_dir= (Save), "
            "or a store= to the pipeline call or to map()."
        )
    return where


def _artifact(planned: _Planned, store: Store | None, sample_id: str | int) -> SampleArtifact:
    step = planned.step
    assert isinstance(step, (Cache, Save))
    return SampleArtifact(
        _where(step, store),
        SampleStepParams(
            step=planned.name,
            params=planned.params,
            code=planned.code,
            sample_id=sample_id,
            upstream=planned.key_in,
        ),
        payload_name=step.payload_name,
        payload_io=step.payload_io,
    )


def _cached(planned: _Planned, store: Store | None, sample_id: str | int) -> Any:
    """The sample stored after the ``Cache`` step ``planned``, checked, or :data:`MISS`."""
    step = planned.step
    assert isinstance(step, Cache)
    where = _where(step, store)
    key = key_from_tree(artifact_tree(step.payload_name, sample_id, planned.key_out))
    found = load_local_hit(where, step.payload_name, key, step.payload_io)
    if found is not FULL_PATH:
        return found
    artifact = _artifact(planned, store, sample_id)
    try:
        with _keys.key_cache():  # the artifact's key is hashed once
            artifact.load()
            return artifact.payload
    except ArtifactNotFoundError:
        return MISS
    except (OSError, ValueError) as error:
        # Left to load_generate, which quarantines what is damaged.
        logger.info("Could not load the cached %s: %s", artifact.payload_name, error)
        return MISS


def _apply(planned: _Planned, processor: Processor, sample: Any, sample_id: str | int) -> Any:
    return apply_processor(
        processor,
        sample,
        sample_id,
        name=planned.name,
        params=planned.params,
        key_out=planned.key_out,
    )


def run_pipeline(
    steps: Sequence[Step], sample: Any, store: Store | None, *, private: bool = False
) -> Any:
    """Run ``steps`` on a copy of ``sample``, resuming from the last cached step already stored.

    ``private=True`` says that nobody else holds ``sample`` (a worker unpickled it from
    its own bytes): processors then work on it directly instead of on a copy.
    """
    sample_id = check_sample(sample, "The sample")
    planned = plan(steps, sample)
    start = 0
    current: Any = None
    for index in range(len(planned) - 1, -1, -1):
        if isinstance(planned[index].step, Cache):
            found = _cached(planned[index], store, sample_id)
            if found is MISS:
                continue
            current = found
            start = index + 1
            break
    if current is None:
        current = sample if private else copy_sample(sample)
    for item in planned[start:]:
        step = item.step
        if isinstance(step, Processor):
            current = _apply(item, step, current, sample_id)
            continue
        artifact = _artifact(item, store, sample_id)
        if isinstance(step, Cache):
            compute = functools.partial(_apply, item, step.processor, current, sample_id)
            artifact.load_generate(compute=compute)
            current = artifact.payload
        else:
            artifact.generate(compute=functools.partial(_identity, current))
        # Later steps may change the sample in place; the artifact already holds its bytes.
        artifact.reset_payload()
    return current


def _identity(value: Any) -> Any:
    return value
