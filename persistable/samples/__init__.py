"""Samples and processors: typed records run through chains of processors, cached per step.

``BaseSample`` (a pydantic model with ``id`` and ``processing_history``; a dataclass
with those two fields works too), ``Processor`` (its fields are its params),
``Compose``, ``Cache``, ``Save`` and :func:`map` over many samples on any executor.
Needs the ``samples`` extra (``pip install 'persistable[samples]'``: pydantic, cloudpickle).
"""

from __future__ import annotations

try:
    import pydantic  # noqa: F401 - checked here to give the install hint
except ImportError as _error:  # pragma: no cover - the dev environment has pydantic
    from persistable.exceptions import MissingDependencyError

    raise MissingDependencyError(
        "persistable.samples needs pydantic, which is not installed; install it with "
        "`pip install 'persistable[samples]'`."
    ) from _error

from persistable.exceptions import InvalidSampleError, MapError, ProcessingError
from persistable.samples._compose import Compose
from persistable.samples._compose import map_samples as map
from persistable.samples._processor import Processor
from persistable.samples._run import Cache, SampleArtifact, SampleStepParams, Save
from persistable.samples._sample import BaseSample, sample_key

__all__ = [
    "BaseSample",
    "Cache",
    "Compose",
    "InvalidSampleError",
    "MapError",
    "ProcessingError",
    "Processor",
    "SampleArtifact",
    "SampleStepParams",
    "Save",
    "map",
    "sample_key",
]
