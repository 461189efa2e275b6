"""The errors of ``persistable.flow`` (all under :class:`~persistable.exceptions.PersistableError`)."""

from __future__ import annotations

from persistable.exceptions import PersistableError

__all__ = [
    "FlowClassNotFoundError",
    "FlowConfigError",
    "FlowError",
    "FlowInputError",
    "FlowRequirementError",
    "FlowStageError",
]


class FlowError(PersistableError):
    """Root of the errors a flow raises on purpose."""


class FlowConfigError(FlowError, ValueError):
    """A flow config is malformed: the message names the file, the key and the fix."""


class FlowClassNotFoundError(FlowError, ImportError):
    """A ``classname`` was not found; the message lists every place that was searched."""


class FlowInputError(FlowError, ValueError):
    """The input or output file of a flow is unusable (not HDF5, missing dataset, same path)."""


class FlowRequirementError(FlowError, LookupError):
    """A stage's ``requires`` entry could not be loaded; names the stage and the requirement."""


class FlowStageError(FlowError, RuntimeError):
    """A stage, generator or resource raised: names it, the rank and the chunk."""
