"""One processor on one sample: the key of its output, and the checked call.

Both the pipeline (:mod:`._run`) and ``Processor.__call__`` use these, so this module
knows processors only by type annotation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from persistable._hashing import KEY_SCHEME, key_from_tree
from persistable.exceptions import InvalidSampleError, ProcessingError
from persistable.samples._sample import check_sample

if TYPE_CHECKING:
    from persistable.samples._processor import Processor

__all__ = ["apply_processor", "step_key"]


def step_key(name: str, params: dict[str, Any], code: str, key_in: str) -> str:
    """The key of a processor's output: its class name, params and code, and the key it got."""
    tree = {
        "key_scheme": KEY_SCHEME,
        "processor": name,
        "params": params,
        "code": code,
        "upstream": key_in,
    }
    return key_from_tree(tree)


def apply_processor(
    processor: Processor,
    sample: Any,
    sample_id: str | int,
    *,
    name: str,
    params: dict[str, Any],
    key_out: str,
) -> Any:
    """``processor.process(sample)``, checked, with the step recorded in its history.

    Raises
    ------
    ProcessingError
        The processor raised, returned something that is not a sample, or changed the id.
    """
    try:
        result = processor.process(sample)
    except Exception as error:
        import traceback

        raise ProcessingError(
            f"{name} failed on sample {sample_id!r} ({type(error).__name__}: {error})",
            sample_id=sample_id,
            processor=name,
            original=error,
            traceback=traceback.format_exc(),
        ) from error
    try:
        result_id = check_sample(result, f"What {name}.process() returned")
    except InvalidSampleError as error:
        raise ProcessingError(
            f"{name}.process() on sample {sample_id!r} did not return a sample "
            f"({error}); return the sample it was given (changed) or a new one.",
            sample_id=sample_id,
            processor=name,
            original=error,
        ) from error
    if result_id != sample_id:
        raise ProcessingError(
            f"{name}.process() turned sample {sample_id!r} into one with id "
            f"{result_id!r}; a processor must keep the sample's id.",
            sample_id=sample_id,
            processor=name,
        )
    result.processing_history.append((name, params, key_out))
    return result
