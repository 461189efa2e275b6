"""Plain functions as persistable steps (``@step``), memori's stages, and memoized commands."""

from persistable.steps._binding import StepParams
from persistable.steps._command import CommandResult, run_command
from persistable.steps._errors import (
    CommandError,
    CommandFailedError,
    CommandNotFoundError,
    CommandOutputError,
    PipelineError,
    StepDefinitionError,
    StepOutputError,
)
from persistable.steps._step import Step, StepPersistable, step

__all__ = [
    "CommandError",
    "CommandFailedError",
    "CommandNotFoundError",
    "CommandOutputError",
    "CommandResult",
    "PipelineError",
    "Step",
    "StepDefinitionError",
    "StepOutputError",
    "StepParams",
    "StepPersistable",
    "run_command",
    "step",
]
