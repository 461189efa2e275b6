"""Errors of function steps, memori stages and memoized commands (all under ``PersistableError``).

::

    PersistableError
    ├── StepDefinitionError        (TypeError)   a function that cannot be a step
    ├── StepOutputError            (ValueError)  a return value that does not match ``outputs``
    ├── PipelineError              (ValueError)  a memori pipeline definition with a cycle or a bad entry
    └── CommandError               (RuntimeError)
        ├── CommandNotFoundError   (FileNotFoundError)
        ├── CommandFailedError                   a non-zero exit code (never memoized)
        └── CommandOutputError                   a declared output missing or outside the folder
"""

from __future__ import annotations

from persistable.exceptions import PersistableError

__all__ = [
    "CommandError",
    "CommandFailedError",
    "CommandNotFoundError",
    "CommandOutputError",
    "PipelineError",
    "StepDefinitionError",
    "StepOutputError",
]


class StepDefinitionError(PersistableError, TypeError):
    """A function cannot be a step as given (no stable identity, bad option)."""


class StepOutputError(PersistableError, ValueError):
    """A step returned something other than its declared ``outputs``."""


class PipelineError(PersistableError, ValueError):
    """A memori ``Pipeline`` definition is invalid (unknown entry, cycle)."""


class CommandError(PersistableError, RuntimeError):
    """A memoized command could not be run or memoized."""


class CommandNotFoundError(CommandError, FileNotFoundError):
    """The command's executable (or a declared dependency script) does not exist."""


class CommandFailedError(CommandError):
    """The command exited with a non-zero code; nothing was memoized."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


class CommandOutputError(CommandError):
    """A declared output was not produced, or lies outside the working folder."""
