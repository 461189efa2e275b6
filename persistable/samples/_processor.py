"""``Processor``: one processing step; its fields are its params, and they are in the key."""

from __future__ import annotations

import logging
import weakref
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from persistable._hashing import bulk_digest
from persistable.exceptions import ExplainedNotImplementedError
from persistable.samples._apply import apply_processor, step_key
from persistable.samples._sample import check_sample, copy_sample, encode_model_value, sample_key

__all__ = ["Processor", "code_fingerprint", "processor_params"]

logger = logging.getLogger(__name__)


class Processor(BaseModel):
    """A processing step: subclass it, declare its params as fields, implement :meth:`process`.

    ::

        class Normalize(Processor):
            percentile: float = 99.5

            def process(self, sample: Cell) -> Cell:
                ...

    Fields are validated by pydantic and canonically encoded into the key of every
    sample processed (an unknown keyword is refused); attributes starting with ``_``
    are private and not params. :meth:`process` may change the sample it gets in
    place: the pipeline hands it a copy, the caller's sample is never changed.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    #: Bump to invalidate cached results after a change the code fingerprint cannot see
    #: (e.g. in a library the processor calls).
    version: ClassVar[str | int | None] = None

    def process(self, sample: Any) -> Any:
        """Return the processed sample (the one given, changed, or a new one with the same id)."""
        raise ExplainedNotImplementedError(f"{type(self).__name__}.process")

    def __call__(self, sample: Any) -> Any:
        """Run this processor alone on a copy of ``sample`` (recording it in the history)."""
        # What Compose([self])(sample) does, without the pipeline (which imports this module).
        sample_id = check_sample(sample, "The sample")
        name = type(self).__name__
        params = processor_params(self)
        key_out = step_key(name, params, code_fingerprint(type(self)), sample_key(sample))
        return apply_processor(
            self, copy_sample(sample), sample_id, name=name, params=params, key_out=key_out
        )


def processor_params(processor: Processor) -> dict[str, Any]:
    """The canonical tree of a processor's fields; an unencodable value names processor and field."""
    name = type(processor).__name__
    return {
        field: encode_model_value(getattr(processor, field), f"{name}.{field}")
        for field in type(processor).model_fields
    }


def code_fingerprint(cls: type[Processor]) -> str:
    """The digest of the processor's code: ``process`` and the user code it reaches, and ``version``.

    The shared code fingerprint (:mod:`persistable._fingerprint`: syntax trees without
    comments, docstrings or formatting, the user's own functions, methods and module
    constants that ``process`` reaches through globals, closures and ``self.``). Code in
    installed libraries is not covered: bump :attr:`Processor.version` when it matters.
    """
    from persistable._fingerprint import fingerprint

    # fingerprint() is asked every time: it caches per function and notices a redefined
    # helper or a rebound constant (a notebook cell run again), which a cache per class
    # would not. Only the digest of an unchanged fingerprint and version is reused.
    code = fingerprint(cls.process)
    version = repr(cls.version)
    known = _digests.get(cls)
    if known is not None and known[0] is code and known[1] == version:
        return known[2]
    if code.unavailable:
        logger.debug("No source for %s: that code is not in the cache key", code.unavailable)
    digest = bulk_digest(f"version={version}\n{code.digest}".encode())
    _digests[cls] = (code, version, digest)
    return digest


#: Per processor class: (the fingerprint object, repr of the version, their digest).
_digests: weakref.WeakKeyDictionary[type, tuple[object, str, str]] = weakref.WeakKeyDictionary()
