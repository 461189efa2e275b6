"""What a sample is: a pydantic ``BaseSample`` or a dataclass with ``id`` and ``processing_history``.

The helpers here read a sample's id and fields, copy it, and compute its identity key
from the canonical content of its fields, for either kind of sample.
"""

from __future__ import annotations

import copy
import dataclasses
import sys
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from persistable._hashing import KEY_SCHEME, key_from_tree
from persistable.exceptions import InvalidSampleError
from persistable.params import encode_value
from persistable.samples._pickling import canonical_state

__all__ = [
    "BaseSample",
    "HistoryEntry",
    "check_sample",
    "copy_sample",
    "encode_model_value",
    "sample_fields",
    "sample_key",
]

#: One entry of ``processing_history``: processor name, its params tree, the sample's key after it.
HistoryEntry = tuple[str, dict[str, Any], str]


class BaseSample(BaseModel):
    """A record flowing through a pipeline: an ``id`` and the ``processing_history`` of processors.

    Subclass it and add fields (numpy arrays and other types are allowed)::

        class Cell(BaseSample):
            image: NDArray[np.float32]
            mask: NDArray[np.bool_] | None = None
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    id: str
    #: ``(processor name, params, key)`` of every processor applied, in order.
    processing_history: list[HistoryEntry] = Field(default_factory=list)

    def __getstate__(self) -> dict[Any, Any]:
        """Pydantic's pickled state, its sets in a fixed order (the bytes do not depend on
        ``PYTHONHASHSEED``, so ``Save()`` in another process keeps an identical sample)."""
        return canonical_state(super().__getstate__())


def sample_fields(sample: Any, where: str = "A sample") -> list[str]:
    """The field names of a pydantic model or dataclass sample, in declaration order."""
    if isinstance(sample, BaseModel):
        return list(type(sample).model_fields)
    if dataclasses.is_dataclass(sample) and not isinstance(sample, type):
        return [field.name for field in dataclasses.fields(sample)]
    raise InvalidSampleError(
        f"{where} must be a pydantic model (subclass persistable.samples.BaseSample) or a "
        f"dataclass with `id` and `processing_history` fields (got {sample!r:.80} that is a "
        f"{type(sample).__qualname__})."
    )


@dataclasses.dataclass(frozen=True)
class _Shape:
    """What the per-sample helpers need of a sample class, worked out once per class."""

    #: The class's ``__qualname__`` (error messages, field paths).
    kind: str
    #: ``module.qualname`` as keys spell it (``__mp_main__`` spelled ``__main__``).
    spelled: str
    #: ``(field name, its path in error messages)``, in declaration order.
    fields: tuple[tuple[str, str], ...]
    has_id: bool


#: Per sample class (the field names of a pydantic model or dataclass never change).
_shapes: dict[type, _Shape] = {}
#: Classes remembered; past this the memo starts again (a notebook redefines classes).
_SHAPES_LIMIT = 4096


def _shape(sample: Any, where: str) -> _Shape:
    cls = type(sample)
    shape = _shapes.get(cls)
    if shape is None:
        names = sample_fields(sample, where)
        kind = cls.__qualname__
        module = "__main__" if cls.__module__ == "__mp_main__" else cls.__module__
        shape = _Shape(
            kind=kind,
            spelled=f"{module}.{kind}",
            fields=tuple((name, f"{kind}.{name}") for name in names),
            has_id="id" in names,
        )
        if len(_shapes) >= _SHAPES_LIMIT:
            _shapes.clear()
        _shapes[cls] = shape
    return shape


def check_sample(sample: Any, where: str) -> str | int:
    """The sample's id, after checking that it has a usable id and a ``processing_history`` list."""
    shape = _shape(sample, where)
    kind = shape.kind
    if not shape.has_id:
        raise InvalidSampleError(
            f"{where} is a {kind} without an `id` field; add `id: str` so that results and "
            "failures can name it (BaseSample has one)."
        )
    sample_id = sample.id
    if isinstance(sample_id, bool) or not isinstance(sample_id, (str, int)) or sample_id == "":
        raise InvalidSampleError(
            f"{where} ({kind}) has id {sample_id!r}; an id must be a non-empty str or an int."
        )
    history = getattr(sample, "processing_history", None)
    if not isinstance(history, list):
        raise InvalidSampleError(
            f"{where} ({kind}, id {sample_id!r}) has no `processing_history` list; add "
            "`processing_history: list = field(default_factory=list)` (BaseSample has one)."
        )
    return sample_id


def copy_sample(sample: Any) -> Any:
    """A deep copy, so that processors that change a sample in place never touch the caller's."""
    return copy.deepcopy(sample)


#: Types that never hold a pydantic model (numpy arrays join them once numpy is imported).
_PLAIN: set[type] = {str, int, float, bool, type(None), bytes}
_PLAIN_NUMPY: list[bool] = []


def encode_model_value(value: Any, path: str) -> Any:
    """The canonical tree of a value that may hold pydantic models (encoded field by field)."""
    kind = type(value)
    if kind in _PLAIN:
        return encode_value(value, path)  # the common case, without the checks below
    if (kind is list or kind is tuple) and not value:
        return []  # what encode_value gives an empty sequence (a fresh processing_history)
    if not _PLAIN_NUMPY and "numpy" in sys.modules:
        _PLAIN.add(sys.modules["numpy"].ndarray)  # dtype object is refused by encode_value
        _PLAIN_NUMPY.append(True)
        return encode_model_value(value, path)
    if isinstance(value, BaseModel):
        return {
            "__type__": "pydantic",
            "class": type(value).__qualname__,
            "fields": {
                name: encode_model_value(getattr(value, name), f"{path}.{name}")
                for name in type(value).model_fields
            },
        }
    if isinstance(value, (list, tuple)) and any(isinstance(item, BaseModel) for item in value):
        return [encode_model_value(item, f"{path}[{index}]") for index, item in enumerate(value)]
    if isinstance(value, Mapping) and any(isinstance(item, BaseModel) for item in value.values()):
        return encode_value(
            {key: encode_model_value(item, f"{path}[{key!r}]") for key, item in value.items()},
            path,
        )
    return encode_value(value, path)


def sample_key(sample: Any) -> str:
    """The identity of a sample as it enters a pipeline: its class, id and the content of every field.

    The class is named with its module, so that two classes of one name never share
    cached results (a hit returns the class that was stored). A script's classes are
    ``__main__`` in the script and ``__mp_main__`` in the workers of a process pool:
    both are spelled ``__main__``.
    """
    shape = _shape(sample, "A sample")
    fields = {name: encode_model_value(getattr(sample, name), path) for name, path in shape.fields}
    return key_from_tree(
        {"key_scheme": KEY_SCHEME, "sample": {"class": shape.spelled, "fields": fields}}
    )
