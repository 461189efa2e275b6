"""1.x's ``DictEncodable`` and ``PersistableParam``, and the field values the key is encoded from.

:class:`DictEncodable` is the 1.x mixin (``to_dict`` over ``__dict__``, the
``_custom_type_encoder_map`` and ``_excluded_attributes`` hooks, ``dict_almost_equal``);
``PersistableParams`` inherits it, overriding ``to_dict`` with the canonical encoding.
:func:`key_field_values` is how the canonical encoding honours the two 1.x hooks that
change identity: a ``PersistableParam(..., exclude_from_file_hash=True)`` value leaves
the key, and a ``_custom_type_encoder_map`` entry turns a value into what is encoded.
"""

from __future__ import annotations

import enum
import warnings
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

__all__ = [
    "DictEncodable",
    "PersistableParam",
    "V1ParamsMethods",
    "key_field_values",
    "v1_encoding",
    "v1_to_dict",
]

ParamTypeT = TypeVar("ParamTypeT")


class PersistableParam(Generic[ParamTypeT]):
    """A params value with options, as in 1.x: ``PersistableParam(4, exclude_from_file_hash=True)``.

    Unlike 1.x (which hashed the wrapper's ``repr``, memory address included), an
    excluded value really stays out of the key and out of ``params.json``; a value that
    is not excluded is keyed exactly like the bare value. New code uses
    :func:`persistable.untracked` instead.
    """

    def __init__(self, param: ParamTypeT, exclude_from_file_hash: bool = False) -> None:
        self.param = param
        self.exclude_from_file_hash = exclude_from_file_hash

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, PersistableParam):
            return NotImplemented
        return (self.param, self.exclude_from_file_hash) == (
            other.param,
            other.exclude_from_file_hash,
        )

    def __hash__(self) -> int:
        return hash((type(self), self.exclude_from_file_hash))

    def __repr__(self) -> str:
        return f"PersistableParam({self.param!r}, exclude_from_file_hash={self.exclude_from_file_hash})"


def _custom_encoder(
    encoders: dict[type[Any], Callable[[Any], Any]], value: Any
) -> Callable[[Any], Any] | None:
    """The encoder 1.x would pick for ``value``: the first class of its MRO in the map."""
    if not isinstance(value, tuple(encoders)):
        return None
    for cls in type(value).__mro__:
        if cls in encoders:
            return encoders[cls]
    return None  # pragma: no cover - isinstance found one of the classes above


def key_field_values(obj: Any, names: Iterable[str]) -> Iterator[tuple[str, Any]]:
    """``(name, value)`` of the tracked fields of ``obj`` as the key sees them (1.x hooks applied)."""
    encoders = getattr(obj, "_custom_type_encoder_map", None)
    for name in names:
        value = getattr(obj, name)
        if isinstance(value, PersistableParam):
            if value.exclude_from_file_hash:
                continue
            value = value.param
        if encoders:
            encoder = _custom_encoder(encoders, value)
            if encoder is not None:
                value = encoder(value)
        yield name, value


def v1_to_dict(obj: Any) -> dict[str, Any]:
    """``to_dict()`` exactly as 1.3.1's ``DictEncodable`` computes it (what its md5 is made from)."""
    if type(obj).to_dict not in _V1_TO_DICTS:
        # The user's own to_dict: 1.x called it too.
        return cast(dict[str, Any], obj.to_dict())
    encoded: dict[str, Any] = {}
    excluded = obj._excluded_attributes
    encoders = obj._custom_type_encoder_map
    for attr_name, attr in obj.__dict__.items():
        if attr_name in excluded:
            continue
        encoder = _custom_encoder(encoders, attr) if encoders else None
        if encoder is not None:
            encoded[attr_name] = encoder(attr)
        elif isinstance(attr, Path):
            encoded[attr_name] = str(attr)
        elif isinstance(attr, enum.Enum):
            encoded[attr_name] = attr.name
        elif isinstance(attr, DictEncodable):
            encoded[attr_name] = v1_to_dict(attr)
        else:
            encoded[attr_name] = attr
    return encoded


#: The ``to_dict`` methods that 1.x's own encoding stands for (user overrides are called):
#: ``DictEncodable.to_dict`` and, registered by ``params.py`` (which imports this module),
#: ``PersistableParams.to_dict``.
_V1_TO_DICTS: list[Callable[..., Any]] = []
_F = TypeVar("_F", bound=Callable[..., Any])


def v1_encoding(method: _F) -> _F:
    """Mark ``method`` as a ``to_dict`` that 1.x's own attribute encoding stands for."""
    _V1_TO_DICTS.append(method)
    return method


class DictEncodable:
    """1.x's mixin that encodes an object's attributes into a dict (``to_dict``).

    Paths become strings and enums their names; override ``_custom_type_encoder_map``
    to encode more types, ``_excluded_attributes`` to leave attributes out. On
    ``PersistableParams`` the encoder map also feeds the key: **the encoded value is
    the value's identity**, so two values one encoder maps to the same output share a key.
    """

    @v1_encoding
    def to_dict(self) -> dict[str, Any]:
        """A dict of the attributes, encoded as 1.x does."""
        return v1_to_dict(self)

    @property
    def _excluded_attributes(self) -> set[str]:
        """Attributes of ``__dict__`` left out of :meth:`to_dict`."""
        return {"__initialised__"}

    @property
    def _custom_type_encoder_map(self) -> dict[type[Any], Callable[[Any], Any]]:
        """Encoders by type, e.g. ``{Path: lambda p: p.name}``; they override the defaults."""
        return {}

    @staticmethod
    def dict_almost_equal(
        dict1: dict[Any, Any],
        dict2: dict[Any, Any],
        rtol: float = 1e-6,
        atol: float = 1e-6,
        verbose: bool = False,
    ) -> bool:
        """Whether two (nested) dicts are equal, floats and arrays up to a tolerance (as 1.x).

        With ``verbose`` the first difference is written to the ``persistable`` logger
        at WARNING (1.x printed it).
        """
        from persistable._v1._compare import dicts_almost_equal

        return dicts_almost_equal(dict1, dict2, rtol=rtol, atol=atol, verbose=verbose)


class V1ParamsMethods(DictEncodable):
    """The 1.x methods of ``PersistableParams`` besides ``to_dict``."""

    def get_str_repr(self) -> str:
        """``str()`` of 1.x's ``to_dict()`` (1.x's readable form; not what keys are made from)."""
        return str(v1_to_dict(self))

    def get_md5_hash(self) -> str:
        """1.x's md5 of ``repr(params)``; deprecated: it is not the key (use ``Persistable.key``)."""
        warnings.warn(
            "PersistableParams.get_md5_hash() is 1.x's md5 of repr(params), which is not the "
            "key of a persistable nor 1.x's file name hash; use Persistable.key (or "
            "Persistable.v1_persist_hash for 1.x's file name hash).",
            DeprecationWarning,
            stacklevel=2,
        )
        from hashlib import md5  # loads OpenSSL: on first use only

        return md5(str(self).encode()).hexdigest()
