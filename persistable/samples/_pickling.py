"""The pickled state of a ``BaseSample``, in bytes that do not depend on ``PYTHONHASHSEED``.

A set of strings iterates (and so pickles) in hash order, and string hashes are
salted per process. Pydantic keeps the names of the fields that were set in such a
set, so the same sample pickled in two processes gave two byte strings: ``Save()``
on a rerun replaced every stored sample instead of keeping the identical one, and a
checksum over the bytes changed with the process. :func:`canonical_state` rewrites
a pickled state so that every set and frozenset inside it (the fields-set, and sets in
field values, nested containers and nested pydantic models) pickles its items in the
order of their own canonical bytes. Unpickling gives back plain ``set`` and
``frozenset`` objects, and the bytes load with any pickle reader that knows the
classes: nothing of this module is referenced by them.

Objects are rebuilt only when something inside them changes, and one object reached
twice is rebuilt once, so shared references stay shared.
"""

from __future__ import annotations

import dataclasses
import pickle
from typing import IO, Any

from pydantic import BaseModel

from persistable.io import PickleFileIO

__all__ = ["SamplePickleFileIO", "canonical_payload", "canonical_state"]

#: Containers nested deeper than this are pickled as they are.
_MAX_DEPTH = 64


class _OrderedSet:
    """Pickles as ``set(items)`` or ``frozenset(items)`` with ``items`` in a fixed order."""

    __slots__ = ("items", "kind")

    def __init__(self, kind: type, items: list[Any]) -> None:
        self.kind = kind
        self.items = items

    def __reduce__(self) -> tuple[Any, ...]:
        return (self.kind, (self.items,))


class _ModelState:
    """Pickles as the pydantic model or dataclass instance it stands for, its state canonical.

    What ``object.__reduce_ex__`` gives such an object (a new instance of the class,
    then its state: pydantic's ``__setstate__``, or the instance ``__dict__`` updated),
    without this class's name in the bytes.
    """

    __slots__ = ("cls", "state")

    def __init__(self, cls: type, state: dict[str, Any]) -> None:
        self.cls = cls
        self.state = state

    def __reduce__(self) -> tuple[Any, ...]:
        return (object.__new__, (self.cls,), self.state)


def _default_pickling(cls: type) -> bool:
    """Whether a pydantic model class pickles through pydantic's own ``__getstate__``."""
    own: dict[str, Any] = {
        name: getattr(cls, name, None)
        for name in ("__reduce_ex__", "__reduce__", "__getstate__", "__setstate__")
    }
    return (
        own["__reduce_ex__"] is object.__reduce_ex__
        and own["__reduce__"] is object.__reduce__
        and own["__getstate__"] is BaseModel.__getstate__
        and own["__setstate__"] is BaseModel.__setstate__
    )


def _plain_instance(cls: type) -> bool:
    """Whether instances of ``cls`` pickle as ``object.__reduce_ex__`` does: their ``__dict__``."""
    getstate = getattr(cls, "__getstate__", None)
    return (
        getattr(cls, "__reduce_ex__", None) is object.__reduce_ex__
        and getattr(cls, "__reduce__", None) is object.__reduce__
        and (getstate is None or getstate is getattr(object, "__getstate__", None))
        and not any("__slots__" in vars(klass) for klass in cls.__mro__[:-1])
    )


class _Canonicaliser:
    """One pass over one state: the replacement of every object already seen, by id."""

    def __init__(self) -> None:
        self._done: dict[int, Any] = {}
        self._keep: list[Any] = []  # the originals stay alive, so their ids stay unique

    def value(self, item: Any, depth: int) -> Any:
        kind = type(item)
        if kind in (str, int, float, bool, bytes, type(None)) or depth > _MAX_DEPTH:
            return item
        if (
            kind not in (set, frozenset, list, tuple, dict)
            and not isinstance(item, BaseModel)
            and not (dataclasses.is_dataclass(item) and not isinstance(item, type))
        ):
            return item  # arrays and other objects pickle as they always did
        known = self._done.get(id(item))
        if known is not None:
            return known
        self._keep.append(item)
        self._done[id(item)] = item  # a cycle back to here pickles the original
        result = self._rebuilt(item, kind, depth + 1)
        self._done[id(item)] = result
        return result

    def _rebuilt(self, item: Any, kind: type, depth: int) -> Any:
        if kind is set or kind is frozenset:
            return self._ordered(item, kind, depth)
        if kind is list or kind is tuple:
            values = [self.value(element, depth) for element in item]
            if all(new is old for new, old in zip(values, item, strict=True)):
                return item
            return values if kind is list else tuple(values)
        if kind is dict:
            pairs = [(key, self.value(element, depth)) for key, element in item.items()]
            if all(new is item[key] for key, new in pairs):
                return item
            return dict(pairs)
        if isinstance(item, BaseModel):
            if _default_pickling(kind):
                return _ModelState(kind, self.state(item.__getstate__(), depth))
            return item  # a BaseSample (its own __getstate__ is canonical) or its own pickling
        if _plain_instance(kind):  # a dataclass instance
            state = item.__dict__
            canonical = self.value(state, depth)
            return item if canonical is state else _ModelState(kind, canonical)
        return item

    def _ordered(self, item: set[Any] | frozenset[Any], kind: type, depth: int) -> Any:
        values = [self.value(element, depth) for element in item]
        try:
            ranked = sorted(
                (
                    (pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL), value)
                    for value in values
                ),
                key=lambda pair: pair[0],
            )
        except Exception:  # an item that does not pickle fails the sample's own pickling
            return item
        return _OrderedSet(kind, [value for _, value in ranked])

    def state(self, state: dict[str, Any], depth: int) -> dict[str, Any]:
        """A pydantic ``__getstate__`` dict with its fields-set, fields, extras and privates canonical."""
        return {name: self.value(part, depth) for name, part in state.items()}


def canonical_state(state: dict[str, Any]) -> dict[str, Any]:
    """``state`` (a pydantic model's ``__getstate__``) with every set inside it in a fixed order."""
    return _Canonicaliser().state(state, 0)


def canonical_payload(sample: Any) -> Any:
    """What to pickle for ``sample``: an object that pickles to the sample with its sets in a
    fixed order (a pydantic model or dataclass that is not a ``BaseSample``), or the sample."""
    return _Canonicaliser().value(sample, 0)


class SamplePickleFileIO(PickleFileIO[Any]):
    """Pickle, as :class:`~persistable.io.PickleFileIO` writes and reads it (name ``"pickle"``),
    with the sets of any sample (a dataclass or any pydantic model) in a fixed order."""

    def _dump(self, payload: Any, stream: IO[bytes]) -> None:
        pickle.dump(canonical_payload(payload), stream, protocol=self.protocol)
